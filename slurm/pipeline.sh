#!/bin/bash
# The paper's chain as dependent SLURM jobs: P -> S -> C -> R (each starts when the previous one succeeded).
# Data first: tinyrs data build --profile paper ...; tinyrs think --teacher openai ... (see README).
#   bash slurm/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p slurm/logs
p=$(sbatch --parsable --export=ALL,STAGE=P --job-name=tinyrs-P slurm/train_stage.sbatch)
s=$(sbatch --parsable --dependency=afterok:$p --export=ALL,STAGE=S --job-name=tinyrs-S slurm/train_stage.sbatch)
c=$(sbatch --parsable --dependency=afterok:$s --export=ALL,STAGE=C --job-name=tinyrs-C slurm/train_stage.sbatch)
r=$(sbatch --parsable --dependency=afterok:$c slurm/train_grpo.sbatch)
echo "submitted P=$p S=$s C=$c R=$r"
