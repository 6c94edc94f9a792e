# Sourced by the CI scripts: runs a step and says how long it took, and the
# run so far (from the first script that sourced this, whose start time the
# scripts it starts inherit).
: "${CI_STARTED:=$(date +%s)}"
export CI_STARTED
step() {
    local started total
    started=$(date +%s)
    "$@"
    total=$(($(date +%s) - CI_STARTED))
    echo "[ci] $(($(date +%s) - started)) s for: $*; $((total / 60)) min $((total % 60)) s so far" >&2
}
