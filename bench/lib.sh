# Shell helpers the bench scripts share (sourced, not run).

wait_port() { # port seconds: until something accepts connections on the port
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "nothing listens on $1 after $2 s"; return 1; }
        sleep 0.2
    done
}

stop() { # pid: SIGTERM, then SIGKILL after 60 s
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$1" 2>/dev/null || true
}
