# The environment of a node's Ray daemons, and so of every job driver and worker they start
# (docs/deployment.md). Sourced, with the head's address, before `ray start` on every node:
#   . ~/nas-sweeps/node-env.sh HEAD_IP
# deploy/cluster.yaml does it; by hand, do the same. Secrets are read from files (mode 0600),
# never written on a command line.
if [ -z "$1" ]; then
    echo "node-env.sh: give the head node's address: . node-env.sh HEAD_IP" >&2
    return 2 2>/dev/null || exit 2
fi
SWEEPS_HOME="$HOME/nas-sweeps"
# the project's environment (installed from the wheel): `ray`, `python` and job drivers use it
export PATH="$SWEEPS_HOME/venv/bin:$PATH"
# Ray token authentication: the token in ~/.ray/auth_token, the same file on every node and client
export RAY_AUTH_MODE=token
# one tracking server for the cluster, on the head, reached at an address every node can use
export MLFLOW_TRACKING_URI="http://$1:5000"
export MLFLOW_TRACKING_USERNAME="${SWEEPS_MLFLOW_USER:-admin}"
MLFLOW_TRACKING_PASSWORD="$(head -n 1 "$SWEEPS_HOME/mlflow-password" 2>/dev/null)"
export MLFLOW_TRACKING_PASSWORD
# The project's cache on the mount every node sees at the same path (SWEEPS_SHARED, default
# /shared): an embedded data set a driver generates there is read by actors on other nodes, a
# trainer resumed elsewhere finds its local checkpoints, and it outlives a job's unpacked copy.
export SWEEPS_CACHE_DIR="${SWEEPS_SHARED:-/shared}/nas-sweeps/cache"
if ! mkdir -p -m 700 "$SWEEPS_CACHE_DIR" 2>/dev/null; then
    echo "node-env.sh: cannot make $SWEEPS_CACHE_DIR: is the shared mount there (SWEEPS_SHARED)?" >&2
    return 1 2>/dev/null || exit 1
fi
