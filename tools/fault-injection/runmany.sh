#!/bin/bash
# usage: runmany.sh NODES DURATION SEED...
n=$1; d=$2; shift 2
for s in "$@"; do
  echo "=== nodes=$n seed=$s"
  timeout $((d+240)) python3 jepsen.py --nodes $n --duration $d --seed $s --out /tmp/rt_out 2>&1 | tail -12
done
