#!/usr/bin/env bash
# Builds the lab's vCenter (main.go) offline from Debian's packages
# (golang-go, golang-github-vmware-govmomi-dev): GOPATH mode, no module
# download. Usage: build.sh OUT_BINARY
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUT_BINARY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/vcsim-lab"
cp "${MAIN_GO:-$here/main.go}" "$work/src/vcsim-lab/main.go"
cd "$work/src/vcsim-lab"
GO111MODULE=off GOPROXY=off GOFLAGS=-mod=mod GOPATH="$work:/usr/share/gocode" GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" \
	go build -o "$out" .
