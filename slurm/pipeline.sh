#!/bin/bash
# The paper's chain as dependent SLURM jobs: P -> S -> C -> R (each starts when the previous one succeeded).
# Data first: tinyrs data build --profile paper ...; tinyrs think --teacher openai ... (see README).
#   bash slurm/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p slurm/logs
# Each run is also named as its ablation arm (runs/arms/P, PS, PSC, PSCR) for slurm/ablations.sh.
p=$(sbatch --parsable --export=ALL,STAGE=P,EXTRA_SET="--arm P" --job-name=tinyrs-P slurm/train_stage.sbatch)
s=$(sbatch --parsable --dependency=afterok:$p --export=ALL,STAGE=S,EXTRA_SET="--arm PS" --job-name=tinyrs-S slurm/train_stage.sbatch)
c=$(sbatch --parsable --dependency=afterok:$s --export=ALL,STAGE=C,EXTRA_SET="--arm PSC" --job-name=tinyrs-C slurm/train_stage.sbatch)
r=$(sbatch --parsable --dependency=afterok:$c --export=ALL,EXTRA_SET="--arm PSCR" slurm/train_grpo.sbatch)
echo "submitted P=$p S=$s C=$c R=$r (then: bash slurm/ablations.sh $r)"
