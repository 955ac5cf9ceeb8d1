package room

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"ezio/engine"
	"ezio/engine/netboot"
	"ezio/engine/server"
)

func TestCheck(t *testing.T) {
	ok := Options{Then: ThenReboot, TargetDisk: "auto"}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Then: "shell", TargetDisk: "auto"}, `"reboot" or "poweroff"`},
		{Options{Then: ThenPoweroff, TargetDisk: "sda"}, "a /dev/ path"},
		{Options{Then: ThenReboot, TargetDisk: "/dev/sda", DHCPRange: "10.0.0.20-10.0.0.10"}, "the lower first"},
	} {
		if err := tc.o.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestListenHost(t *testing.T) {
	for _, tc := range []struct{ tracker, peer, want string }{
		{":6969", ":6881", ""},
		{"0.0.0.0:6969", "10.0.0.5:6881", "10.0.0.5"},
		{"10.0.0.7:6969", "10.0.0.5:6881", "10.0.0.7"},
	} {
		if got := ListenHost(tc.tracker, tc.peer); got != tc.want {
			t.Errorf("ListenHost(%q, %q) = %q, want %q", tc.tracker, tc.peer, got, tc.want)
		}
	}
}

func TestCountsAndDone(t *testing.T) {
	ms := []server.Machine{{State: netboot.StateVerified}, {State: netboot.StateDeploying}, {State: netboot.StateRebooted}, {State: netboot.StateVerified}, {State: netboot.StateFailed}}
	if got := Counts(ms); got != "1 deploying, 2 verified, 1 rebooted, 1 failed" {
		t.Errorf("Counts = %q", got)
	}
	if v, w := Done(ms); v != 3 || w != 2 {
		t.Errorf("Done = %d verified, %d waiting", v, w)
	}
}

// TestWatch: a real image server's machines; the watch waits for the
// verified machines to come back to their disks, then stops.
func TestWatch(t *testing.T) {
	sess, err := engine.NewSession(engine.SessionOptions{Tuning: engine.Tuning{ListenAddr: "127.0.0.1:0"}, Serve: true, ServerListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	var mu sync.Mutex
	ms := []server.Machine{{MAC: "52:54:00:00:00:01", State: netboot.StateVerified}, {MAC: "52:54:00:00:00:02", State: netboot.StateDeploying}}
	sess.Server().SetNetboot(nil, func() []server.Machine {
		mu.Lock()
		defer mu.Unlock()
		return append([]server.Machine(nil), ms...)
	})
	reached, stopped := make(chan int, 1), make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go Watch{Expect: 2, Then: ThenReboot, Reached: func(n int) { reached <- n }, Stop: func() { close(stopped) }}.Run(ctx, sess.Server())
	set := func(i int, st string) {
		mu.Lock()
		ms[i].State = st
		mu.Unlock()
	}
	time.Sleep(1500 * time.Millisecond)
	select {
	case <-reached:
		t.Fatal("reached with one machine verified")
	default:
	}
	set(1, netboot.StateVerified)
	select {
	case n := <-reached:
		if n != 2 {
			t.Errorf("reached with %d", n)
		}
	case <-ctx.Done():
		t.Fatal("two verified machines not seen")
	}
	select {
	case <-stopped:
		t.Fatal("stopped before the machines came back to their disks")
	case <-time.After(1500 * time.Millisecond):
	}
	set(0, netboot.StateRebooted)
	set(1, netboot.StateRebooted)
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("not stopped once the machines rebooted")
	}
}
