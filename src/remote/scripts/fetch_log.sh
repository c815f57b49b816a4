# Args: PATH MAX_BYTES. The last MAX_BYTES of the file, decompressed if gzip'd.
case $1 in
*.gz) gzip -dc -- "$1" | tail -c "$2" ;;
*) tail -c "$2" -- "$1" ;;
esac
