-- Builds the test session from scratch (ardour7-lua, dummy backend): a 12-channel master, the
-- "Song" track with Demixer (VST3) and its ten outputs, a "Reference" track with the same region
-- and no plugin, and four busses fed by the stem outputs. Master inputs: 1/2 Reference, 3/4 Mix,
-- 5/6 Drums, 7/8 Bass, 9/10 Other, 11/12 Vocals: the export writes them as one 12-channel file.
-- Environment: SESSION_DIR, SESSION_NAME, RATE, LENGTH (samples), PLUGIN (VST3 name).
local dir, name = os.getenv("SESSION_DIR"), os.getenv("SESSION_NAME")
local rate = tonumber(os.getenv("RATE"))
local length = tonumber(os.getenv("LENGTH"))
local s = create_session(dir, name, rate)
assert(s, "create_session failed")
local audio = ARDOUR.DataType("audio")

local master = Session:master_out()
for i = 3, 12 do
  master:input():add_port("", nil, audio)
  master:output():add_port("", nil, audio)
end
assert(master:n_inputs():n_audio() == 12 and master:n_outputs():n_audio() == 12)

local function track(nm)
  local tl = Session:new_audio_track(2, 2, nil, 1, nm, ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
  assert(tl:size() == 1)
  return tl:front():to_track()
end
local function bus(nm)
  local rl = Session:new_audio_route(2, 2, nil, 1, nm, ARDOUR.PresentationInfo.Flag.AudioBus, ARDOUR.PresentationInfo.max_order)
  assert(rl:size() == 1)
  return rl:front()
end

local song = track("Song")
local ref = track("Reference")
local stems = {}
for _, nm in ipairs({"Drums", "Bass", "Other", "Vocals"}) do stems[#stems + 1] = bus(nm) end

-- The song: a region that Ardour writes itself (a bounce of the empty reference track); the
-- test fills its two source files with the music before the session is opened again.
local region = ref:bounce_range(0, length, ARDOUR.InterThreadInfo(), ARDOUR.LuaAPI.nil_proc(), false, "song", false)
assert(not region:isnil())
local ar = region:to_audioregion()
ar:set_fade_in_active(false)
ar:set_fade_out_active(false)
ref:playlist():add_region(region, Temporal.timepos_t(0), 1, false, 0, 0, false)
song:playlist():add_region(ARDOUR.RegionFactory.clone_region(region, true, false), Temporal.timepos_t(0), 1, false, 0, 0, false)
for i = 0, 1 do print("SOURCE\t" .. ar:source(i):to_filesource():path()) end

-- Demixer on the song track, with all ten outputs: strict I/O off, so the track's outputs follow
-- the plugin's (what the pin manager does when a user adds outputs).
local pname = os.getenv("PLUGIN") or "Demixer"
local proc = ARDOUR.LuaAPI.new_plugin(Session, pname, ARDOUR.PluginType.VST3, "")
assert(not proc:isnil(), pname .. " (VST3) is not in Ardour's plugin list: was the bundle scanned?")
song:set_strict_io(false)
assert(song:add_processor_by_index(proc, 0, nil, true) == 0, "cannot add " .. pname)
assert(song:customize_plugin_insert(proc, 1, ARDOUR.ChanCount(audio, 10), ARDOUR.ChanCount(audio, 0)))
assert(song:n_outputs():n_audio() == 10, "song outputs: " .. song:n_outputs():n_audio())

-- The routing grid: reference → master 1/2, Mix → master 3/4, stem pairs → the busses' inputs,
-- bus outputs → master 5..12.
local function connect(from_io, from_index, to_io, to_index)
  local rv = from_io:connect(from_io:audio(from_index), to_io:audio(to_index):name(), nil)
  assert(rv == 0, "connect failed")
end
for _, r in ipairs({song, ref, table.unpack(stems)}) do
  r:output():disconnect_all(nil)
  r:input():disconnect_all(nil)
end
master:output():disconnect_all(nil)
connect(ref:output(), 0, master:input(), 0)
connect(ref:output(), 1, master:input(), 1)
connect(song:output(), 0, master:input(), 2)
connect(song:output(), 1, master:input(), 3)
for k, b in ipairs(stems) do
  connect(song:output(), 2 * k, b:input(), 0)
  connect(song:output(), 2 * k + 1, b:input(), 1)
  connect(b:output(), 0, master:input(), 2 + 2 * k)
  connect(b:output(), 1, master:input(), 3 + 2 * k)
end
-- More outputs than inputs would get a VBAP panner spreading every input over all outputs, as
-- in Ardour's mixer; a user bypasses the panner so that each channel goes to its own port.
master:panner_shell():set_bypassed(true)
song:panner_shell():set_bypassed(true)
Session:save_state("", false, false, false, false, false)
-- Lua's references to the session's objects go before the session (see session.lua).
master, song, ref, stems, region, ar, proc = nil, nil, nil, nil, nil, nil, nil
collectgarbage()
Session:close()
print("BUILT")
