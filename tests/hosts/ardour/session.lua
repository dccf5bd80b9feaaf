-- Runs in the session build.lua made. PHASE=export: exports, preset change, automation,
-- non-default values, save; PHASE=reopen: prints every parameter and saves again, so that the
-- plugin's state is written afresh; PHASE=control: one export (the reference plugin's session);
-- PHASE=model: waits (bounded) until the model the saved state names has loaded and Ardour shows
-- its latency, then exports.
local dir, name, phase = os.getenv("SESSION_DIR"), os.getenv("SESSION_NAME"), os.getenv("PHASE")
local length = tonumber(os.getenv("LENGTH"))
assert(load_session(dir, name), "load_session failed")
local rate = Session:nominal_sample_rate()
local song = Session:route_by_name("Song")
local proc = song:nth_plugin(0)
assert(not proc:isnil(), "no plugin on the song track")
local pi = proc:to_insert()
local plug = pi:plugin(0)
print("PLUGIN\t" .. plug:name() .. "\t" .. plug:unique_id())

local index = {}
for i = 0, plug:parameter_count() - 1 do
  if plug:parameter_is_control(i) and plug:parameter_is_input(i) then index[plug:parameter_label(i)] = i end
end
local function get(label)
  local v, ok = ARDOUR.LuaAPI.get_processor_param(proc, index[label], true)
  return v
end
local function set(label, value)
  assert(ARDOUR.LuaAPI.set_processor_param(proc, index[label], value), "cannot set " .. label)
end
local function params()
  for i = 0, plug:parameter_count() - 1 do
    if plug:parameter_is_control(i) and plug:parameter_is_input(i) then
      print(string.format("PARAM\t%s\t%.9g", plug:parameter_label(i), get(plug:parameter_label(i))))
    end
  end
end

-- Waits (bounded) until f() is true; returns how long it took.
local function wait_for(what, f, seconds)
  local t0 = ARDOUR.LuaAPI.monotonic_time()
  while not f() do
    assert(ARDOUR.LuaAPI.monotonic_time() - t0 < seconds * 1e6, "timed out waiting for " .. what)
    ARDOUR.LuaAPI.usleep(10000)
  end
  return (ARDOUR.LuaAPI.monotonic_time() - t0) / 1e6
end

local function latency_report(tag)
  print(string.format("LATENCY\t%s\tblock=%d\tplugin=%d\troute=%d\tplayback=%d\tworst_route=%d\tworst_output=%d\tmaster_playback=%d",
    tag, Session:get_block_size(), pi:signal_latency(), song:signal_latency(), song:playback_latency(false), Session:worst_route_latency(),
    Session:worst_output_latency(), Session:master_out():playback_latency(false)))
end

local function export(tag)
  local e = Session:simple_export()
  assert(e:set_preset("3f0c2b4e-9a1d-4c55-8e7b-1d2a6c9e4f00"), "float WAV export preset missing")
  e:set_folder(dir .. "/out")
  e:set_name(tag)
  e:set_range(0, length)
  assert(e:check_outputs(), "nothing to export")
  local t0 = ARDOUR.LuaAPI.monotonic_time()
  assert(e:run_export(), "export failed")
  print(string.format("EXPORT\t%s\t%s\t%.3f", tag, dir .. "/out/" .. tag .. ".wav", (ARDOUR.LuaAPI.monotonic_time() - t0) / 1e6))
end

if phase == "export" then
  for i = 0, song:output():n_ports():n_audio() - 1 do
    local d = plug:describe_io_port(ARDOUR.DataType("audio"), false, i)
    print(string.format("PORT\t%s\t%s\t%s", song:output():audio(i):name(), d.name, d.group_name))
  end
  latency_report("normal")
  export("normal")

  -- The preset changes in the session: the plugin reports a new latency and Ardour follows.
  local before = pi:signal_latency()
  set("Preset", 0) -- Low latency
  local took = wait_for("the new latency", function () return pi:signal_latency() ~= before and Session:worst_route_latency() == pi:signal_latency() end, 10)
  print(string.format("LATENCY_CHANGE\t%.3f", took))
  latency_report("low")
  export("low")

  -- Automation: the stem outputs post-fader; Drums Gain 1 → 0.25 → 1, Bass Mute on in a stretch.
  set("Stem Outputs Post-Fader", 1)
  local function automate(label, points)
    local al, cl, pd = ARDOUR.LuaAPI.plugin_automation(proc, index[label])
    assert(not al:isnil(), "no automation list for " .. label)
    for _, p in ipairs(points) do
      cl:add(Temporal.timepos_t(math.floor(p[1] * rate + 0.5)), p[2], false, false)
    end
    -- plugin_automation's list belongs to the parameter's control; Play makes the export follow it
    pi:to_automatable():automation_control(Evoral.Parameter(ARDOUR.AutomationType.PluginAutomation, 0, plug:nth_parameter(index[label], true)), false):set_automation_state(ARDOUR.AutoState.Play)
    print(string.format("AUTOMATION\t%s\t%d points", label, cl:size()))
  end
  automate("Drums Gain", {{0, 1}, {1.5, 1}, {1.6, 0.25}, {3.0, 0.25}, {3.1, 1}})
  automate("Bass Mute", {{0, 0}, {2.0, 1}, {3.5, 0}})
  export("automated")

  -- Non-default values for the save/reopen check (not automated ones).
  set("Other Gain", 0.5)
  set("Vocals Gain", 2.0)
  set("Other Mute", 1)
  set("Vocals Solo", 1)
  set("Bass Solo", 1)
  set("Engine", 1) -- HPSS
  set("Preset", 2) -- High quality
  params()
  Session:save_state("", false, false, false, false, false)
elseif phase == "control" then
  -- The reference plugin (a plain 1000-sample delay that reports 1000) in Demixer's place.
  latency_report("control")
  export("control")
elseif phase == "model" then
  -- The plugin plays HPSS while the model loads on its own thread, then reports the model's
  -- latency; Ardour follows.
  local hpss = tonumber(os.getenv("HPSS_LATENCY"))
  local took = wait_for("the model's latency", function () return pi:signal_latency() ~= hpss and Session:worst_route_latency() == pi:signal_latency() end, 120)
  print(string.format("LATENCY_CHANGE\t%.3f", took))
  latency_report("model")
  export("model")
elseif phase == "reopen" then
  latency_report("reopened")
  params()
  Session:save_state("", false, false, false, false, false)
end
-- Lua's references to the session's objects go first: left to the end of the script, luasession
-- would free them after the session (valgrind: ~IO and ~Stripable read freed session memory).
song, proc, pi, plug = nil, nil, nil, nil
collectgarbage()
Session:close()
print("DONE")
