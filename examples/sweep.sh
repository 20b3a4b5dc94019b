#!/usr/bin/env bash
# A sweep over a config group and a learning rate: 2 models x 3 rates = 6 experiments,
# staged in one command, then run two at a time. From the repository root:
#   bash examples/sweep.sh
set -euo pipefail
yanex run examples/train.py -p "optimizer.lr=logspace(-3, -1, 3)" \
    -p "model=list(linear, poly)" --stage --tag sweep-example
yanex run --staged -j 2
