# Sourced by the L7 benchmarks: what they share.

# bench_directory NAME: a new directory under /tmp that nginx's workers, which run as nobody, can read.
# mktemp's mode 700 made every nginx request of these benchmarks until 2026-11-27 a 403 and an error-log
# line.
bench_directory() {
  local directory
  directory=$(mktemp -d "/tmp/flamespan-$1.XXXXXX")
  chmod 755 "$directory"
  echo "$directory"
}

# wrk_requests LOG COMMAND...: runs a wrk command line, keeps its report in LOG and prints the requests it
# completed. Fails when any answer was not 2xx or 3xx: a benchmark of error pages measures the wrong work.
wrk_requests() {
  local log=$1
  shift
  "$@" >"$log" || return 1
  if grep -q 'Non-2xx' "$log"; then
    echo "wrk got error responses ($(grep 'Non-2xx' "$log" | tr -s ' ')); see $log" >&2
    return 1
  fi
  awk '/requests in/ {print $1}' "$log"
}

# A TCP port on 127.0.0.1 nothing listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The nginx they measure: one worker serving a 17-byte static file with no access log, the cheapest
# request nginx answers and so the one where a tracer's cost shows most. run.sh also measures nginx as
# Debian ships it (write_debian_nginx_site).

# write_nginx_site DIR PORT: the page and the configuration, under DIR.
write_nginx_site() {
  local root=$1 port=$2
  mkdir -p "$root/html" "$root/tmp"
  echo "hello from nginx" >"$root/html/index.html"
  cat >"$root/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $root/nginx.pid;
error_log $root/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $root/tmp; proxy_temp_path $root/tmp; fastcgi_temp_path $root/tmp;
  uwsgi_temp_path $root/tmp; scgi_temp_path $root/tmp;
  server { listen 127.0.0.1:$port; root $root/html; }
}
CONF
}

# write_debian_nginx_site DIR PORT: nginx as Debian's package configures it (/etc/nginx/nginx.conf and
# sites-available/default of nginx 1.22): a worker per CPU, an access log, sendfile and tcp_nopush, gzip,
# nginx's default of 1000 requests per keep-alive connection, and Debian's 615-byte welcome page. The
# paths and the port differ, so that it runs beside a system nginx; the workers run as nobody rather than
# www-data; the module includes and the TLS settings, which a plain-HTTP site does not use, are left out.
write_debian_nginx_site() {
  local root=$1 port=$2
  mkdir -p "$root/html" "$root/tmp" "$root/log"
  if [[ -f /var/www/html/index.nginx-debian.html ]]; then
    cp /var/www/html/index.nginx-debian.html "$root/html/index.html"
  else
    head -c 615 /dev/zero | tr '\0' x >"$root/html/index.html"
  fi
  cat >"$root/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $root/nginx.pid;
error_log $root/log/error.log;
events { worker_connections 768; }
http {
  sendfile on;
  tcp_nopush on;
  types_hash_max_size 2048;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log $root/log/access.log;
  gzip on;
  client_body_temp_path $root/tmp; proxy_temp_path $root/tmp; fastcgi_temp_path $root/tmp;
  uwsgi_temp_path $root/tmp; scgi_temp_path $root/tmp;
  server {
    listen 127.0.0.1:$port default_server;
    root $root/html;
    index index.html;
    server_name _;
    location / { try_files \$uri \$uri/ =404; }
  }
}
CONF
}

# start_nginx SITE DIR PORT [PREFIX...]: writes SITE (nginx, or nginx-debian) under DIR and starts nginx on
# it in the background, behind an optional command prefix such as taskset. Sets NGINX_MASTER, then
# NGINX_WORKERS once every worker has started (the master listens before it forks them) and NGINX_URL.
start_nginx() {
  local site=$1 root=$2 port=$3 workers=1
  shift 3
  case $site in
    nginx)
      write_nginx_site "$root" "$port"
      NGINX_URL="http://127.0.0.1:$port/index.html"
      ;;
    nginx-debian)
      write_debian_nginx_site "$root" "$port"
      NGINX_URL="http://127.0.0.1:$port/"
      workers=$(nproc)
      ;;
    *)
      echo "unknown nginx site '$site' (known: nginx nginx-debian)" >&2
      return 1
      ;;
  esac
  "$@" nginx -c "$root/nginx.conf" -p "$root" &
  NGINX_MASTER=$!
  NGINX_WORKERS=$(nginx_worker "$NGINX_MASTER" "$root" "$workers")
}

# round_order ROUND WORD...: the words as given in odd rounds and reversed in even ones, so that a steady
# drift of the host over a benchmark favours none of the configurations or stages it compares.
round_order() {
  local round=$1
  shift
  if ((round % 2)); then echo "$@"; else printf '%s\n' "$@" | tac | xargs; fi
}

# What a script started in the background, stopped however it exits (trap stop_started EXIT): the
# recorder, by SIGINT so that it detaches its programs, and nginx.
RECORDER=""
NGINX_MASTER=""
stop_started() {
  [[ -z $RECORDER ]] || kill -INT "$RECORDER" 2>/dev/null || true
  [[ -z $NGINX_MASTER ]] || kill "$NGINX_MASTER" 2>/dev/null || true
}

# stop_recorder: ends the recording in RECORDER as Ctrl-C would and waits for it to write its outputs;
# returns its exit status.
stop_recorder() {
  local status=0
  kill -INT "$RECORDER"
  wait "$RECORDER" || status=$?
  RECORDER=""
  return "$status"
}

# recorder_started PID LOG: waits until `flamespan record` (PID, its stderr in LOG) says it is sampling,
# which it does once its programs are attached; loading them takes seconds, mostly in the kernel's
# verifier, and requests sent before then are not traced. Fails if it exits first or takes over 60 s.
recorder_started() {
  local pid=$1 log=$2
  for _ in $(seq 1 600); do
    grep -q 'Ctrl-C to stop' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "flamespan record did not start; see $log" >&2
  return 1
}

# nginx_worker MASTER_PID DIR [COUNT]: prints the pids of the workers that nginx's master forks, once
# COUNT of them (default 1) exist; fails after 5 s, pointing at DIR/error.log or DIR/log/error.log.
nginx_worker() {
  local master=$1 count=${3:-1} workers=""
  for _ in $(seq 1 50); do
    workers=$({ xargs <"/proc/$master/task/$master/children"; } 2>/dev/null || true)
    if [[ $(wc -w <<<"$workers") -ge $count ]]; then
      echo "$workers"
      return 0
    fi
    sleep 0.1
  done
  echo "nginx started $(wc -w <<<"$workers") of $count workers; see the error.log under $2" >&2
  return 1
}

# start_sample_server PORT [PREFIX...]: samples/bin/http_server (built if need be) on 127.0.0.1:PORT in the
# background, behind an optional command prefix such as taskset. Sets SAMPLE_PID and SAMPLE_URL (the
# server at SAMPLE_PATH, default /light); fails if the port does not accept connections within 10 s.
start_sample_server() {
  local port=$1
  shift
  make -s -C samples || return 1
  "$@" samples/bin/http_server "$port" >/dev/null &
  SAMPLE_PID=$!
  SAMPLE_URL="http://127.0.0.1:$port${SAMPLE_PATH:-/light}"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "samples/bin/http_server does not listen on 127.0.0.1:$port" >&2
  return 1
}
