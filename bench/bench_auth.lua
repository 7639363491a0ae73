-- wrk script for bench/bench_auth.sh: each request carries the next
-- Authorization value of the pool file given after "--" (round robin).
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  i = math.random(#tokens) -- threads start at different places in the pool
end
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = tokens[i] })
end
