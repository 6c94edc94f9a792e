# Sourced by the CI scripts: runs a step and says how long it took, and the
# run so far (SECONDS counts from the sourcing script's start).
step() {
    local started=$SECONDS
    "$@"
    echo "[ci] $((SECONDS - started)) s for: $*; $((SECONDS / 60)) min $((SECONDS % 60)) s so far" >&2
}
