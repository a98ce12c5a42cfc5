#!/usr/bin/env bash
# Installs libfashionclf.so, fashionclf.h and fashionclf.pc under a prefix (default /usr/local), so that
#   cc retail.c $(pkg-config --cflags --libs fashionclf)
# works. The library is built with the Swift standard library linked statically (its own build folder,
# .build-dist), so a machine without a Swift toolchain can load it: it needs only libc, libm, libstdc++,
# libgcc_s, zlib and libomp.so.5 (Debian: libomp5).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
swift build -c release --scratch-path .build-dist -Xswiftc -static-stdlib --product fashionclf
version=$(sed -n 's/^#define FCLF_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' Sources/CFashionCLF/include/fashionclf.h | paste -sd.)
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 Sources/CFashionCLF/include/fashionclf.h "$prefix/include/"
install -m 755 .build-dist/release/libfashionclf.so "$prefix/lib/"
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
echo "installed fashionclf $version under $prefix"
