#!/bin/bash
# The ablation arms of Tables II-IV and VI on a cluster (paper profile), after the main chain (pipeline.sh).
# Each arm is one stage run from its parent arm's checkpoint, named with --arm (runs/arms/<name>); arms that
# start from the main chain run at once (two job arrays), the unbalanced chain as dependent jobs. A last job
# evaluates every arm (tinyrs ablations: nothing is trained again) and measures Table V.
#   bash slurm/ablations.sh [MAIN_CHAIN_JOB_ID]      (the R job of pipeline.sh, if it is still running)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p slurm/logs
after=${1:+--dependency=afterok:$1}
base=${BASE_MODEL:-Qwen/Qwen2-VL-2B-Instruct}

# An arm: "STAGE --arm NAME --init PARENT [--set KEY=VALUE ...]". Independent arms go out as job arrays
# (one array of supervised arms, one of GRPO arms: they need different resources); task i runs arm i.
array() {  # array() SCRIPT ARM... -> job id
  local script=$1; shift
  local specs; specs=$(IFS=';'; echo "$*")
  ARM_SPECS="$specs" sbatch --parsable $after --array=0-$(($# - 1)) --job-name=tinyrs-arms --export=ALL "$script"
}
one() {  # one() DEPENDENCY ARM -> job id (a single arm that waits for another)
  ARM_SPECS="$2" sbatch --parsable --dependency=afterok:$1 --array=0 --job-name=tinyrs-arms --export=ALL \
    $([ "${2%% *}" = R ] && echo slurm/train_grpo.sbatch || echo slurm/train_stage.sbatch)
}

ids=()
# Table II: S and PC (supervised), PSR and R (GRPO)
ids+=($(array slurm/train_stage.sbatch "S --arm S --init $base" "C --arm PC --init P"))
ids+=($(array slurm/train_grpo.sbatch "R --arm PSR --init S" "R --arm R --init $base" \
  "R --arm PSCR-quantized --init C --set reward_variant=quantized" \
  "R --arm PSCR-binary --init C --set reward_variant=binary" \
  "R --arm PSCR-released --init C --set grounding_reward=released" \
  "R --arm PSCR-judge2 --init C --set judge=judge_haiku"))   # Table III; Table VI (ANTHROPIC_API_KEY)
# Table IV: the unbalanced chain, one stage after another
u1=$(array slurm/train_stage.sbatch "S --arm PS-unbalanced --init P --set train_file=instruct.json")
u2=$(one $u1 "C --arm PSC-unbalanced --init arm:PS-unbalanced --set balance=null")
u3=$(one $u2 "R --arm PSCR-unbalanced --init arm:PSC-unbalanced")
ids+=($u1 $u2 $u3)

all=$(IFS=:; echo "${ids[*]}")
ev=$(sbatch --parsable --dependency=afterok:$all slurm/evaluate_arms.sbatch)
echo "submitted arms ${ids[*]}; evaluation $ev"
