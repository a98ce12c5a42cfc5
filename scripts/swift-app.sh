#!/usr/bin/env bash
# Builds and runs examples/swift-app with fashionclf as a *versioned* dependency (.package(url:from:)), the way
# another project uses it: from a clone of this repository's committed HEAD, tagged with the header's version.
#   scripts/swift-app.sh [PHOTO...]     (default: two of examples/photos)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/^#define FCLF_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' Sources/CFashionCLF/include/fashionclf.h | paste -sd.)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$root" "$tmp/fashionclf"
# The clone's own tag: this checkout's tags are left alone, and HEAD is what gets checked.
git -C "$tmp/fashionclf" tag -f "$version" HEAD >/dev/null
cp -r examples/swift-app "$tmp/app"
rm -rf "$tmp/app/.build"
photos=("$@")
[ ${#photos[@]} -gt 0 ] || photos=("$root/examples/photos/7-sneaker-1.jpg" "$root/examples/photos/1-trouser-1.jpg")
cd "$tmp/app"
export FASHIONCLF_URL="file://$tmp/fashionclf"
echo "swift-app: building against fashionclf $version (tag $version of a clone of $(git -C "$root" rev-parse --short HEAD))"
swift build -q
swift run -q fclf-swift-app "${photos[@]}"
