#!/bin/bash
# The learned solver in digits-sd3's StableDiffusion3Pipeline against diffusers' flow schedulers (issue 29),
# as run on this machine (the NFE-4 learn shared the two cores with four other jobs); the FD to the teacher was
# added by a second run on the saved solvers: ... --solvers experiments/latent-flow-pipeline (README).
set -euo pipefail
python benchmarks/latent_flow_pipeline.py --nfe 4 5 --out experiments/latent-flow-pipeline
