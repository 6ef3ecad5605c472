# clean_npm ARGS...: npm ARGS with Node $NODE_DIR/bin first on PATH and without the environment
# of an `npm run` that started the caller. Sourced by install-e2e.sh; test/install-e2e.test.ts.
#
# Nested npm installs must not see the environment of an `npm run` that started this script:
# npm reads npm_config_* variables as its own config, so the parent's npm_config_user_agent
# ("... node/v20 ...") would reach code-server's postinstall, which takes the Node version from it.
# Keep only what reaches the registry (proxies, CA, registry, cache); drop the rest npm exported.
clean_npm() {
  local keep=() v
  while IFS= read -r v; do
    case ${v,,} in
      npm_config_registry|npm_config_@*|npm_config_*proxy|npm_config_cafile|npm_config_ca|npm_config_strict_ssl|npm_config_cache|npm_config_userconfig) keep+=("$v=${!v}") ;;
    esac
  done < <(compgen -e | grep -i '^npm_')
  local path_clean
  # Drop the node_modules/.bin folders and npm's node-gyp shim that `npm run` puts first on PATH.
  path_clean=$(tr ':' '\n' <<<"$PATH" | grep -v -e '/node_modules/' | paste -sd: -)
  env $(compgen -e | grep -i -e '^npm_' -e '^NODE$' -e '^INIT_CWD$' | sed 's/^/-u /') \
    "${keep[@]}" PATH="$NODE_DIR/bin:$path_clean" npm "$@"
}

