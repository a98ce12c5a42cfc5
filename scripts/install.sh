#!/usr/bin/env bash
# Installs libfashionclf.so.MAJOR.MINOR.PATCH with its SONAME link (libfashionclf.so.MAJOR) and development
# link (libfashionclf.so), fashionclf.h and fashionclf.pc under a prefix (default /usr/local), so that
#   cc retail.c $(pkg-config --cflags --libs fashionclf)
# works, then refreshes the loader cache (ldconfig) when run as root. The library is built with the Swift standard library linked statically (its own build folder,
# .build-dist), so a machine without a Swift toolchain can load it: it needs only libc, libm, libstdc++,
# libgcc_s, zlib and libomp.so.5 (Debian: libomp5).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
swift build -c release --scratch-path .build-dist -Xswiftc -static-stdlib --product fashionclf
version=$(sed -n 's/^#define FCLF_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' Sources/CFashionCLF/include/fashionclf.h | paste -sd.)
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 Sources/CFashionCLF/include/fashionclf.h "$prefix/include/"
major=${version%%.*}
install -m 755 .build-dist/release/libfashionclf.so "$prefix/lib/libfashionclf.so.$version"
ln -sfn "libfashionclf.so.$version" "$prefix/lib/libfashionclf.so.$major"
ln -sfn "libfashionclf.so.$major" "$prefix/lib/libfashionclf.so"
cat > "$prefix/lib/pkgconfig/fashionclf.pc.tmp" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: fashionclf
Description: Fashion-MNIST clothing classifier (C API)
Version: $version
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lfashionclf
Cflags: -I\${includedir}
PC
mv "$prefix/lib/pkgconfig/fashionclf.pc.tmp" "$prefix/lib/pkgconfig/fashionclf.pc"
# Refresh the loader's cache for the folders it is configured with (/usr/local/lib on Debian); a prefix outside
# them is found through the rpath that fashionclf.pc adds.
if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
    ldconfig
fi
echo "installed fashionclf $version under $prefix (library libfashionclf.so.$version, SONAME libfashionclf.so.$major)"
