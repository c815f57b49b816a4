# Args: PATH. The first MiB of a regular file (never through a symlink), for --diff.
[ -f "$1" ] && [ ! -L "$1" ] && head -c 1048576 -- "$1"
