# Shared by the benchmark scripts (sourced; they set THREADS, CONNECTIONS, DURATION and data).

measure() { # name url [cookie]
  local out rps p50 p99 cookie=()
  [ -n "${3:-}" ] && cookie=(-H "Cookie: $3")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Accept-Encoding: br, gzip' "${cookie[@]}" "$2")
  # A page that answered an error is not the page measured (ALLOW_NON_2XX=1: the 404 page).
  if [ -z "${ALLOW_NON_2XX:-}" ] && grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
    echo "bench: $1 answered other than 2xx:" >&2; echo "$out" >&2; exit 1
  fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-14s %12s req/s   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99" >&2
  echo "$rps"
}
# A customer with no homeserver signs up and signs in; prints the session cookie.
signed_in_cookie() { # base url
  local jar="$data/jar-$RANDOM" code password="bench correct horse battery staple 42"
  curl -fsS -o /dev/null -c "$jar" -b "$jar" -H "Origin: $1" --data-urlencode "email=bench@example.com" \
    --data-urlencode "password=$password" -d display_name=Bench -d age=on -d terms=on "$1/sign-up"
  curl -fsS -o /dev/null -c "$jar" -b "$jar" -H "Origin: $1" --data-urlencode "email=bench@example.com" \
    --data-urlencode "password=$password" "$1/sign-in"
  local cookie; cookie=$(awk '$6 == "portal_session" {print $6 "=" $7}' "$jar")
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$1/dashboard")
  [ "$code" = 200 ] || { echo "bench: signing in failed (dashboard answered $code)" >&2; exit 1; }
  echo "$cookie"
}
# The path of the verification link in the email the portal wrote to its outbox (one customer).
verification_path() { # outbox dir
  "$PORTAL_TOOLS/venv/bin/python" - "$1" <<'PY'
import email, pathlib, re, sys, time
for _ in range(100):  # the mail job delivers within a few seconds
    for path in sorted(pathlib.Path(sys.argv[1]).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                found = re.search(r"/verify-email/[A-Za-z0-9_-]+", part.get_payload(decode=True).decode())
                if found:
                    print(found.group(0)); sys.exit(0)
    time.sleep(0.1)
sys.exit("bench: no verification email")
PY
}
