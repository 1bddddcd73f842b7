-- Prints one machine-readable line: SUMMARY requests=.. rps=.. p50_ms=.. p99_ms=.. bad_status=.. sock_err=..
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("SUMMARY requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f bad_status=%d sock_err=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, errs))
end
