#!/usr/bin/env ruby
# A wrangle runner in Ruby: divvy's dance-party ticket codes, as a long-lived process.
#
# wrangle starts one runner per runner slot and keeps it. Load the expensive things (a
# Rails app, connections) once at the top; then wrangle sends one JSON line per task on
# stdin and reads one JSON line per answer on stdout. stderr is your log. Protocol:
# docs/runner-protocol.md.
#
#   seq 0 9 | wrangle run -n 2 --runner 'ruby examples/runners/runner.rb'
require 'json'
require 'digest/sha1'

# Handles one task and returns its result (any JSON value), or raises to fail it.
# `wrangle run` sends the item: a line of text, or a range block {"start" => S, "end" => E}.
def perform(_kind, payload)
  tickets = payload.is_a?(Hash) ? (payload['start']...payload['end']).to_a : [payload]
  tickets.map { |t| format('%6s %s', t, Digest::SHA1.hexdigest(t.to_s)) }.join("\n")
end

warn "ticket runner #{ENV.fetch('WRANGLE_RUNNER', '?')} ready (pid #{Process.pid})"
$stdin.each_line do |line|
  task = JSON.parse(line)
  reply =
    begin
      { id: task['id'], ok: true, result: perform(task['kind'], task['payload']) }
    rescue StandardError => e # a failed task, not a dead runner
      { id: task['id'], ok: false, error: "#{e.class}: #{e.message}" }
    end
  $stdout.puts(JSON.generate(reply))
  $stdout.flush
end
