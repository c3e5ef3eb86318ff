# The AWS SDK for Ruby client of credfresh's SDK matrix (tests/e2e/sdk_matrix.rs), run with
# Debian's ruby-aws-sdk-core (scripts/ensure-ruby-aws-sdk.sh).
#
#   ruby client.rb once           one GetCallerIdentity from a fresh process
#   ruby client.rb long SECONDS   one client, a call every 2 s for SECONDS
#
# Credentials come from the SDK's default chain (AWS_PROFILE with the shared files, or the
# container endpoint where the release reads it). STS is $AWS_ENDPOINT_URL_STS, passed
# explicitly (this release does not read that variable). One JSON line per call: {"call",
# "ok", "arn", "key"} or {"call", "ok": false, "error"}; "key" is the access key ID that
# signed the request, read from its Authorization header. Secrets are never printed.
require 'json'
require 'aws-sdk-core'

mode, seconds = ARGV
unless mode == 'once' || (mode == 'long' && seconds.to_f.positive?)
  warn 'usage: client.rb once | client.rb long SECONDS'
  exit 2
end
endpoint = ENV['AWS_ENDPOINT_URL_STS']
if endpoint.to_s.empty?
  warn 'AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS'
  exit 2
end
$stdout.sync = true

def signer(context)
  auth = context&.http_request&.headers&.[]('authorization').to_s
  auth[%r{Credential=([A-Z0-9]+)/}, 1]
end

deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + (mode == 'long' ? seconds.to_f : 0)
begin
  client = Aws::STS::Client.new(endpoint: endpoint, retry_limit: 0)
rescue StandardError => e
  puts JSON.generate(call: 1, ok: false, error: "#{e.class}: #{e.message}")
  exit 0
end
call = 0
loop do
  call += 1
  begin
    out = client.get_caller_identity
    puts JSON.generate(call: call, ok: true, arn: out.arn, key: signer(out.context))
  rescue StandardError => e
    puts JSON.generate(call: call, ok: false, error: "#{e.class}: #{e.message}")
  end
  break if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline

  sleep 2
end
