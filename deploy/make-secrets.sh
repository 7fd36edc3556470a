#!/usr/bin/env sh
# Writes random passwords and the URLs that use them into deploy/secrets/ (ignored by git),
# for deploy/compose.yaml. Leaves existing files alone.
set -eu
cd "$(dirname "$0")"
# The directory keeps other users of this host out; the files stay readable because Compose
# bind-mounts them into containers that run as other users (citeline is uid 10001).
mkdir -p secrets
chmod 700 secrets
umask 022
random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
[ -f secrets/postgres_password ] || random > secrets/postgres_password
[ -f secrets/valkey_password ] || random > secrets/valkey_password
[ -f secrets/citeline_jwt_secret ] || random > secrets/citeline_jwt_secret
[ -f secrets/citeline_provider_api_keys ] || echo '{}' > secrets/citeline_provider_api_keys
[ -f secrets/citeline_database_url ] \
  || echo "postgresql://citeline:$(cat secrets/postgres_password)@postgres:5432/citeline" \
    > secrets/citeline_database_url
[ -f secrets/citeline_redis_url ] \
  || echo "redis://:$(cat secrets/valkey_password)@valkey:6379/0" > secrets/citeline_redis_url
echo "secrets written to $(pwd)/secrets"
