# Restart the web program inside the running compose stack, then show where everything stands.
# Usage (PowerShell, from the directory with docker-compose.yml): .\scripts\restart-backend.ps1 [program]
# -T: a script has no terminal to hand the container (docs/deployment.md shows these same commands).
param([string]$Program = "web")
$ErrorActionPreference = "Stop"

docker compose exec -T app supervisor restart $Program
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
docker compose exec -T app supervisor status
exit $LASTEXITCODE
