# Restart the web program inside the running compose stack, then show where everything stands.
# Usage (PowerShell, from the directory with docker-compose.yml): .\scripts\restart-backend.ps1 [program]
param([string]$Program = "web")
$ErrorActionPreference = "Stop"

docker compose exec app supervisor restart $Program
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
docker compose exec app supervisor status
exit $LASTEXITCODE
