-- POST a client_credentials token request with HTTP Basic (env CLIENT_ID, CLIENT_SECRET, SCOPE, TOKEN_PATH).
local id = os.getenv("CLIENT_ID") or "bench"
local secret = os.getenv("CLIENT_SECRET") or "bench-secret"
local scope = os.getenv("SCOPE") or "read"
wrk.method = "POST"
wrk.path = os.getenv("TOKEN_PATH") or "/oauth2/token"
wrk.body = "grant_type=client_credentials&scope=" .. scope
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local b64 = io.popen("printf '%s' '" .. id .. ":" .. secret .. "' | base64 -w0"):read("*a")
wrk.headers["Authorization"] = "Basic " .. b64
dofile(os.getenv("WRK_SUMMARY"))
