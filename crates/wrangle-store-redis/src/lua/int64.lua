-- Exact 64-bit integers for the scripts that compute with ids (range jobs' cursors and
-- blocks, job tallies): Lua numbers are doubles, exact only up to 2^53. A value v is the
-- pair {hi, lo} with v = hi * 10^10 + lo and 0 <= lo < 10^10, so every part (and every
-- sum of a few parts) stays far below 2^53. Values come and go as decimal text.

local I64_BASE = 1e10

-- The value of decimal text (an optional '-', then digits).
local function i64(text)
  local negative = string.sub(text, 1, 1) == '-'
  local digits = negative and string.sub(text, 2) or text
  local n = #digits
  local hi, lo = 0, tonumber(digits)
  if n > 10 then
    hi = tonumber(string.sub(digits, 1, n - 10))
    lo = tonumber(string.sub(digits, n - 9))
  end
  if not negative then
    return {hi, lo}
  end
  if lo == 0 then
    return {0 - hi, 0}
  end
  return {-hi - 1, I64_BASE - lo}
end

local function i64_add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= I64_BASE then
    return {hi + 1, lo - I64_BASE}
  end
  return {hi, lo}
end

local function i64_sub(a, b)
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then
    return {hi - 1, lo + I64_BASE}
  end
  return {hi, lo}
end

local function i64_lt(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- Decimal text of a value.
local function i64_text(v)
  local hi, lo = v[1], v[2]
  local sign = ''
  if hi < 0 then
    -- The magnitude's parts.
    sign = '-'
    if lo > 0 then
      hi, lo = -hi - 1, I64_BASE - lo
    else
      hi = -hi
    end
  end
  if hi == 0 then
    return sign .. string.format('%d', lo)
  end
  return sign .. string.format('%d%010d', hi, lo)
end
