#!/bin/sh
# Install the LAN Farm bundle for this user (no root): ./install.sh [--uninstall]
# Files: ~/.local/lib/lanfarm (the bundle), ~/.local/bin/lanfarm (the CLI), the menu entry and icons.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
lib=$HOME/.local/lib/lanfarm
bin=$HOME/.local/bin
if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$lib" "$bin/lanfarm" "$data/applications/lanfarm.desktop"
    rm -f "$data"/icons/hicolor/*/apps/lanfarm.png "$data/icons/hicolor/scalable/apps/lanfarm.svg"
    echo "LAN Farm removed (your settings and farm token stay in ~/.config/lanfarm)"
    exit 0
fi
rm -rf "$lib.new" && mkdir -p "$(dirname "$lib")" "$bin" "$data/applications"
cp -a "$here/LANFarm" "$lib.new" && rm -rf "$lib" && mv "$lib.new" "$lib"
ln -sf "$lib/lanfarm-cli" "$bin/lanfarm"
for size in 16 32 48 64 128 256 512; do
    mkdir -p "$data/icons/hicolor/${size}x${size}/apps"
    cp "$here/icons/lanfarm-$size.png" "$data/icons/hicolor/${size}x${size}/apps/lanfarm.png"
done
mkdir -p "$data/icons/hicolor/scalable/apps" && cp "$here/icons/lanfarm.svg" "$data/icons/hicolor/scalable/apps/"
sed -e "s|^Exec=LANFarm|Exec=\"$lib/LANFarm\"|" -e "s|^TryExec=LANFarm|TryExec=$lib/LANFarm|" \
    "$here/lanfarm.desktop" > "$data/applications/lanfarm.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "LAN Farm installed: the app is in your menu; 'lanfarm node --token-file FILE' runs a node ($bin/lanfarm)"
