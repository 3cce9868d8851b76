#!/usr/bin/env bash
# Writes an Open MPI hostfile ("host slots=N" per line) for the current batch job, to FILE or to
# standard output:
#   bash hostfiles/make-hostfile.sh [FILE]
# Under SLURM (SLURM_JOB_NODELIST set): the hosts come from `scontrol show hostnames`, the slots
# from SLURM_NTASKS_PER_NODE (sbatch --ntasks-per-node), else SLURM_TASKS_PER_NODE (e.g.
# "2(x3),1"), else SLURM_JOB_CPUS_PER_NODE, else 1.
# Under PBS/Torque (PBS_NODEFILE set, one line per rank): duplicate lines are counted into slots,
# in the order the hosts first appear.
# Inside a job mpirun reads the allocation itself; a hostfile helps when you run mpirun by
# hand on the allocated nodes (salloc, an interactive qsub -I), want to edit the placement, or use
# an MPI without scheduler support.
set -euo pipefail

# Not "> /dev/stdout": that would truncate a file standard output already points to.
if [ $# -gt 0 ]; then exec > "$1"; fi

# "2(x3),1" -> one count per node: 2 2 2 1
expand_counts() {
    local item n r
    local -a items
    IFS=, read -r -a items <<<"$1"
    for item in "${items[@]}"; do
        if [[ "$item" =~ ^([0-9]+)\(x([0-9]+)\)$ ]]; then
            n=${BASH_REMATCH[1]}; r=${BASH_REMATCH[2]}
            for (( ; r > 0; r-- )); do echo "$n"; done
        elif [[ "$item" =~ ^[0-9]+$ ]]; then
            echo "$item"
        else
            echo "make-hostfile: cannot read the count '$item' in '$1'" >&2; return 1
        fi
    done
}

if [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    command -v scontrol >/dev/null || { echo "make-hostfile: scontrol not found (needed to expand SLURM_JOB_NODELIST)" >&2; exit 1; }
    # scontrol reads slurm.conf (SLURM_CONF) even for this: run it inside the job.
    names=$(scontrol show hostnames "$SLURM_JOB_NODELIST") ||
        { echo "make-hostfile: scontrol show hostnames '$SLURM_JOB_NODELIST' failed" >&2; exit 1; }
    mapfile -t hosts <<<"$names"
    if [ -n "${SLURM_NTASKS_PER_NODE:-}" ]; then
        mapfile -t counts < <(for _ in "${hosts[@]}"; do echo "$SLURM_NTASKS_PER_NODE"; done)
    elif [ -n "${SLURM_TASKS_PER_NODE:-}" ]; then
        mapfile -t counts < <(expand_counts "$SLURM_TASKS_PER_NODE")
    elif [ -n "${SLURM_JOB_CPUS_PER_NODE:-}" ]; then
        mapfile -t counts < <(expand_counts "$SLURM_JOB_CPUS_PER_NODE")
    else
        mapfile -t counts < <(for _ in "${hosts[@]}"; do echo 1; done)
    fi
    if [ "${#counts[@]}" -ne "${#hosts[@]}" ]; then
        echo "make-hostfile: ${#hosts[@]} hosts in '$SLURM_JOB_NODELIST' but ${#counts[@]} task counts" >&2
        exit 1
    fi
    {
        echo "# SLURM job ${SLURM_JOB_ID:-?}: $SLURM_JOB_NODELIST"
        for i in "${!hosts[@]}"; do echo "${hosts[$i]} slots=${counts[$i]}"; done
    }
elif [ -n "${PBS_NODEFILE:-}" ]; then
    [ -r "$PBS_NODEFILE" ] || { echo "make-hostfile: cannot read PBS_NODEFILE=$PBS_NODEFILE" >&2; exit 1; }
    {
        echo "# PBS job ${PBS_JOBID:-?}: $PBS_NODEFILE"
        # Count each host's lines, keeping the order of first appearance (not sort | uniq -c).
        awk 'NF { if (!($1 in n)) order[++k] = $1; n[$1]++ }
             END { for (i = 1; i <= k; i++) print order[i] " slots=" n[order[i]] }' "$PBS_NODEFILE"
    }
else
    echo "make-hostfile: neither SLURM_JOB_NODELIST nor PBS_NODEFILE is set: run it inside a SLURM or PBS job" >&2
    exit 1
fi
