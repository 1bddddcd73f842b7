-- GET RESOURCE_PATH with an optional bearer token (env TOKEN).
wrk.method = "GET"
wrk.path = os.getenv("RESOURCE_PATH") or "/protected"
local token = os.getenv("TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
dofile(os.getenv("WRK_SUMMARY"))
