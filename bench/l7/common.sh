# Sourced by the L7 benchmarks: what they share.

# A TCP port on 127.0.0.1 nothing listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The nginx they measure: one worker serving a 17-byte static file with no access log, the cheapest
# request nginx answers and so the one where a tracer's cost shows most.

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

# nginx_worker MASTER_PID DIR: prints the pid of the worker that nginx's master forks (the sites above run
# one), once it exists; fails after 5 s, pointing at DIR/error.log.
nginx_worker() {
  local master=$1 worker=""
  for _ in $(seq 1 50); do
    worker=$({ xargs <"/proc/$master/task/$master/children"; } 2>/dev/null || true)
    if [[ -n $worker ]]; then
      echo "$worker"
      return 0
    fi
    sleep 0.1
  done
  echo "nginx started no worker; see $2/error.log" >&2
  return 1
}
