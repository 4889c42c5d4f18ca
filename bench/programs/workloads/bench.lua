-- bench.lua — the Lua workload of bench/programs/run.sh: six small classic
-- compute problems, written for this benchmark. Each prints one line whose
-- content depends only on the computation, so the native and the wasm32
-- builds of the same interpreter must print the same text (floats go
-- through string.format, which is exact in glibc and wasi-libc alike; no
-- math function but sqrt is used, and nothing depends on the order of
-- pairs()).
--
--   lua - [SCALE] < bench.lua      SCALE (default 1) multiplies the work
--
-- It raises no error and uses no pcall or coroutines (see lua_config.h).

local scale = tonumber(arg and arg[1]) or 1
local reps = math.max(1, math.floor(scale))

-- 1. Permutations: the maximum number of prefix reversals ("pancake flips")
-- over all permutations of 1..n, generated in place by Heap's algorithm,
-- and a checksum over the flip counts. Integer arithmetic and small arrays.
local function pancakes(n)
  local perm, work, c = {}, {}, {}
  for i = 1, n do perm[i] = i; c[i] = 1 end
  local maxflips, checksum, index = 0, 0, 0
  local function count()
    for i = 1, n do work[i] = perm[i] end
    local flips, first = 0, work[1]
    while first ~= 1 do
      local lo, hi = 1, first
      while lo < hi do
        work[lo], work[hi] = work[hi], work[lo]
        lo, hi = lo + 1, hi - 1
      end
      flips = flips + 1
      first = work[1]
    end
    if flips > maxflips then maxflips = flips end
    checksum = checksum + (index % 2 == 0 and flips or -flips)
    index = index + 1
  end
  count()
  local i = 1
  while i <= n do
    if c[i] < i then
      if i % 2 == 1 then perm[1], perm[i] = perm[i], perm[1]
      else perm[c[i]], perm[i] = perm[i], perm[c[i]] end
      count()
      c[i] = c[i] + 1
      i = 1
    else
      c[i] = 1
      i = i + 1
    end
  end
  return maxflips, checksum, index
end

-- 2. Planets: five bodies under gravity, leapfrog steps; the energy before
-- and after. Floating-point arithmetic on fields of small tables.
local function planets(steps)
  local pi, days = 3.141592653589793, 365.24
  local solar = 4 * pi * pi
  local function body(x, y, z, vx, vy, vz, m)
    return { x = x, y = y, z = z, vx = vx * days, vy = vy * days, vz = vz * days, m = m * solar }
  end
  local b = {
    body(0, 0, 0, 0, 0, 0, 1),
    body(4.84, -1.16, -0.10, 0.00166, 0.00770, -0.0000690, 0.000954),
    body(8.34, 4.12, -0.40, -0.00277, 0.00500, 0.0000230, 0.000286),
    body(12.89, -15.11, -0.22, 0.00296, 0.00237, -0.0000296, 0.0000437),
    body(15.38, -25.92, 0.18, 0.00268, 0.00163, -0.0000951, 0.0000515),
  }
  local nb = #b
  local px, py, pz = 0, 0, 0
  for i = 1, nb do
    px = px + b[i].vx * b[i].m; py = py + b[i].vy * b[i].m; pz = pz + b[i].vz * b[i].m
  end
  b[1].vx, b[1].vy, b[1].vz = -px / solar, -py / solar, -pz / solar
  local function energy()
    local e = 0
    for i = 1, nb do
      local bi = b[i]
      e = e + 0.5 * bi.m * (bi.vx * bi.vx + bi.vy * bi.vy + bi.vz * bi.vz)
      for j = i + 1, nb do
        local bj = b[j]
        local dx, dy, dz = bi.x - bj.x, bi.y - bj.y, bi.z - bj.z
        e = e - bi.m * bj.m / math.sqrt(dx * dx + dy * dy + dz * dz)
      end
    end
    return e
  end
  local e0 = energy()
  local dt = 0.01
  for _ = 1, steps do
    for i = 1, nb do
      local bi = b[i]
      for j = i + 1, nb do
        local bj = b[j]
        local dx, dy, dz = bi.x - bj.x, bi.y - bj.y, bi.z - bj.z
        local d2 = dx * dx + dy * dy + dz * dz
        local mag = dt / (d2 * math.sqrt(d2))
        local mi, mj = bi.m * mag, bj.m * mag
        bi.vx, bi.vy, bi.vz = bi.vx - dx * mj, bi.vy - dy * mj, bi.vz - dz * mj
        bj.vx, bj.vy, bj.vz = bj.vx + dx * mi, bj.vy + dy * mi, bj.vz + dz * mi
      end
    end
    for i = 1, nb do
      local bi = b[i]
      bi.x, bi.y, bi.z = bi.x + dt * bi.vx, bi.y + dt * bi.vy, bi.z + dt * bi.vz
    end
  end
  return e0, energy()
end

-- 3. Power iteration: the largest singular value of the infinite matrix
-- a(i,j) = 1/((i+j)(i+j+1)/2 + i + 1) cut to n x n. Nested loops over
-- arrays of floats, a function call per element.
local function singular(n)
  local function a(i, j)
    local ij = i + j
    return 1.0 / (ij * (ij + 1) // 2 + i + 1)
  end
  local function mul(v, out, transposed)
    for i = 0, n - 1 do
      local s = 0.0
      for j = 0, n - 1 do
        if transposed then s = s + a(j, i) * v[j] else s = s + a(i, j) * v[j] end
      end
      out[i] = s
    end
  end
  local u, v, t = {}, {}, {}
  for i = 0, n - 1 do u[i] = 1.0 end
  for _ = 1, 10 do
    mul(u, t, false); mul(t, v, true)
    mul(v, t, false); mul(t, u, true)
  end
  local uv, vv = 0.0, 0.0
  for i = 0, n - 1 do uv = uv + u[i] * v[i]; vv = vv + v[i] * v[i] end
  return math.sqrt(uv / vv)
end

-- 4. Trees: many short-lived complete binary trees and one long-lived one;
-- the node counts. Allocation and the garbage collector.
local function trees(maxdepth)
  local function make(d)
    if d == 0 then return {} end
    return { make(d - 1), make(d - 1) }
  end
  local function check(t)
    if t[1] then return 1 + check(t[1]) + check(t[2]) end
    return 1
  end
  local longlived = make(maxdepth)
  local total = 0
  for d = 4, maxdepth, 2 do
    local iters = 1 << (maxdepth - d + 4)
    for _ = 1, iters do total = total + check(make(d)) end
  end
  return total, check(longlived)
end

-- 5. Text: generates sentences from a fixed vocabulary with a linear
-- congruential generator, counts the words with string patterns and a hash
-- table, and reports the ten most frequent (ties broken by the word).
-- Strings, string.format, gmatch, gsub, table.sort with a comparator.
local function text(nsentences)
  local vocab = {}
  local syll = { "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "qua", "dre" }
  local seed = 12345
  local function rnd(k)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % k + 1
  end
  for i = 1, 400 do
    local w = {}
    for _ = 1, 1 + i % 4 do w[#w + 1] = syll[rnd(#syll)] end
    vocab[i] = table.concat(w)
  end
  local counts, lines, chars = {}, {}, 0
  for s = 1, nsentences do
    local words = {}
    for k = 1, 6 + rnd(10) do
      -- skewed towards the start of the vocabulary, as words are in text
      words[k] = vocab[math.min(rnd(400), rnd(400), rnd(400))]
    end
    local line = string.format("%d: %s.", s, table.concat(words, " "))
    line = line:gsub("^(%d+): (%a)", function(n, c) return n .. ": " .. c:upper() end)
    lines[#lines + 1] = line
    chars = chars + #line
    if #lines == 1000 then
      for w in table.concat(lines, "\n"):gmatch("%a+") do
        w = w:lower()
        counts[w] = (counts[w] or 0) + 1
      end
      lines = {}
    end
  end
  for w in table.concat(lines, "\n"):gmatch("%a+") do
    w = w:lower()
    counts[w] = (counts[w] or 0) + 1
  end
  local list = {}
  for w, c in pairs(counts) do list[#list + 1] = { w = w, c = c } end
  table.sort(list, function(x, y)
    if x.c ~= y.c then return x.c > y.c end
    return x.w < y.w
  end)
  local top = {}
  for i = 1, 10 do top[i] = list[i].w .. "=" .. list[i].c end
  return chars, #list, table.concat(top, " ")
end

-- 6. Primes: a sieve over a table of booleans, then the sum and a checksum
-- of the gaps between consecutive primes. Table indexing in tight loops.
local function primes(limit)
  local composite = {}
  for i = 2, limit do composite[i] = false end
  for i = 2, math.floor(math.sqrt(limit)) do
    if not composite[i] then
      for j = i * i, limit, i do composite[j] = true end
    end
  end
  local count, sum, gapsum, last = 0, 0, 0, 2
  for i = 2, limit do
    if not composite[i] then
      count = count + 1
      sum = sum + i
      gapsum = (gapsum * 31 + (i - last)) % 1000000007
      last = i
    end
  end
  return count, sum, gapsum
end

-- The sizes grow with SCALE (a fraction gives a quicker run); kernels whose
-- size is fixed repeat instead.
local n9 = scale >= 1 and 9 or 8
local nsteps = math.floor(200000 * scale)
local nsing = math.floor(250 * math.sqrt(scale))
local ntext = math.floor(60000 * scale)
local nprimes = math.floor(2000000 * scale)
local out = {}
out[#out + 1] = string.format("pancakes(%d): max flips %d, checksum %d, permutations %d", n9, pancakes(n9))
for _ = 2, reps do pancakes(n9) end
out[#out + 1] = string.format("planets(%d): energy %.9f -> %.9f", nsteps, planets(nsteps))
out[#out + 1] = string.format("singular(%d): %.9f", nsing, singular(nsing))
out[#out + 1] = string.format("trees(14): %d nodes checked, long-lived %d", trees(14))
for _ = 2, reps do trees(14) end
out[#out + 1] = string.format("text(%d): %d chars, %d distinct words, top: %s", ntext, text(ntext))
out[#out + 1] = string.format("primes(%d): %d primes, sum %d, gap hash %d", nprimes, primes(nprimes))
print(table.concat(out, "\n"))
