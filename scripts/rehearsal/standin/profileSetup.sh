#!/bin/sh
# STAND-IN for the pack's bin/profileSetup.sh (4.0-4.4; wso2/product-apim v4.3.0,
# modules/distribution/product/src/main/startup-scripts/profileSetup.sh), the part a gateway node relies on. For
# -Dprofile=gateway-worker, as WSO2's: repository/conf/deployment.toml renamed deployment.toml.backup and the profile's
# template (repository/resources/conf/deployment-templates/gateway-worker.toml) copied in its place, unless
# --skipConfigOptimization is given; every webapp but the gateway's (api#am#gateway#v2.war) and the pizzashack sample
# removed, with its unpacked folder. Like WSO2's it works from its own folder, and is plain sh (WSO2's page runs it
# with `sh`). The other profiles (key manager, control plane, traffic manager) are not stood in.
userLocation=$(pwd)
cd "$(dirname "$0")" || exit 1
conf=../repository/conf/deployment.toml
templates=../repository/resources/conf/deployment-templates
webapps=../repository/deployment/server/webapps

say() { echo "[$(date '+%Y-%m-%d %H:%M:%S')] INFO - $*"; }

skip=false
for option in "$@"; do
  case "$option" in
    --skipConfigOptimization | -skipConfigOptimization | skipConfigOptimization) skip=true ;;
  esac
done

case "$1" in
  -Dprofile=gateway-worker)
    say "Starting to optimize API Manager for the Gateway worker profile"
    if [ "$skip" = true ]; then
      say "Config optimizations in deployment.toml skipped since the option --skipConfigOptimization is passed"
    elif [ -e "$conf" ] && [ -e "$templates/gateway-worker.toml" ]; then
      mv "$conf" "$conf.backup"
      say "Renamed the existing $conf file as deployment.toml.backup"
      cp "$templates/gateway-worker.toml" "$conf"
      say "Copied the existing $templates/gateway-worker.toml file as $conf"
    fi
    for i in $(find "$webapps" -maxdepth 1 -mindepth 1 -not \( -name 'am#sample#pizzashack#v*.war' -o -name 'api#am#gateway#v2.war' \)); do
      rm -r "$i"
      say "Removed the $(basename "$i") file from $webapps"
      folder="$webapps/$(basename "$i" .war)"
      if [ -d "$folder" ]; then
        rm -r "$folder"
        say "Removed $(basename "$folder") directory from $webapps"
      fi
    done
    ;;
  *)
    echo "Profile is not specified properly (the stand-in knows -Dprofile=gateway-worker only), please try again"
    cd "$userLocation" || exit 1
    exit 1
    ;;
esac

echo Finished the optimizations
cd "$userLocation" || exit 1
