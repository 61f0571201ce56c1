#!/usr/bin/env ruby
# Asks remote workers for the digits of pi and prints them (ExecQueues' pi client, over
# the HTTP API), with nothing but Ruby's standard library.
# Usage: pi_client.rb [--url URL] [--token TOKEN] DIGITS
require "json"
require "net/http"
require "optparse"
require "uri"

class Wrangle
  class Error < StandardError; end

  def initialize(url, token: nil)
    @uri = URI(url.chomp("/"))
    @token = token
  end

  # Enqueues a task; returns its id.
  def submit(kind, payload = nil, **options)
    call(Net::HTTP::Post, "/api/tasks", options.merge(kind: kind, payload: payload)).last["id"]
  end

  # Waits until the task is completed, dead or cancelled; returns it.
  def wait(id, timeout: 120)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      left = [[(deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)).ceil, 1].max, 300].min
      status, task = call(Net::HTTP::Get, "/api/tasks/#{id}/wait?timeout=#{left}s")
      return task if status == 200 || Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline
    end
  end

  # Submits a task and waits for it; raises if it did not complete.
  def run(kind, payload = nil, timeout: 120, **options)
    task = wait(submit(kind, payload, **options), timeout: timeout)
    raise Error, "task #{task["id"]} is #{task["state"]}: #{task["error"]}" unless task["state"] == "completed"
    task
  end

  private

  def call(method, path, body = nil)
    request = method.new(@uri.path + path)
    request["Accept"] = "application/json"
    request["Authorization"] = "Bearer #{@token}" if @token
    if body
      request["Content-Type"] = "application/json"
      request.body = JSON.generate(body)
    end
    response = Net::HTTP.start(@uri.host, @uri.port, read_timeout: 330) { |http| http.request(request) }
    answer = response.body.to_s.empty? ? nil : JSON.parse(response.body)
    unless response.code.start_with?("2")
      detail = answer.is_a?(Hash) ? answer["detail"] : response.message
      raise Error, "#{response.code}: #{detail}"
    end
    [response.code.to_i, answer]
  end
end

if $PROGRAM_NAME == __FILE__
  options = { url: ENV.fetch("WRANGLE_URL", "http://127.0.0.1:7077"), token: ENV["WRANGLE_TOKEN"] }
  OptionParser.new do |o|
    o.banner = "Usage: pi_client.rb [--url URL] [--token TOKEN] DIGITS"
    o.on("--url URL") { |v| options[:url] = v }
    o.on("--token TOKEN") { |v| options[:token] = v }
  end.parse!
  digits = Integer(ARGV.fetch(0) { abort "pi_client: give the number of digits" })
  begin
    task = Wrangle.new(options[:url], token: options[:token]).run("pi", { digits: digits })
    puts task["result"]["pi"]
  rescue Wrangle::Error => e
    abort "pi_client: #{e.message}"
  end
end
