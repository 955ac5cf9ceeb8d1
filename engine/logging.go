package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// eventHandler copies log records into the job's event stream (for the
// wizard's log pane) and passes them on.
type eventHandler struct {
	next  slog.Handler
	b     *broker
	attrs []slog.Attr
}

func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo && h.component() != "torrent" {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "component", "image", "role":
			default:
				msg += " " + a.Key + "=" + a.Value.String()
			}
			return true
		})
		h.b.publishEvent(Event{Time: r.Time, Kind: EventLog, Level: strings.ToLower(r.Level.String()), Message: msg})
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *eventHandler) component() string {
	for _, a := range h.attrs {
		if a.Key == "component" {
			return a.Value.String()
		}
	}
	return ""
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{next: h.next.WithAttrs(as), b: h.b, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	return &eventHandler{next: h.next.WithGroup(name), b: h.b, attrs: h.attrs}
}

// LevelSpec is a parsed --log-level / EZIO_LOG value such as
// "info,engine=debug,torrent=warn": a default level and per-component ones.
type LevelSpec struct {
	Default    slog.Level
	Components map[string]slog.Level
}

// ParseLevelSpec reads a level spec; empty means info (and warn for the
// BitTorrent library, which is chatty at info).
func ParseLevelSpec(s string) (LevelSpec, error) {
	ls := LevelSpec{Default: slog.LevelInfo, Components: map[string]slog.Level{"torrent": slog.LevelWarn}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		comp, lvl, has := strings.Cut(part, "=")
		if !has {
			lvl, comp = comp, ""
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(lvl)); err != nil {
			return ls, fmt.Errorf("log level %q: want debug, info, warn or error", lvl)
		}
		if comp == "" {
			ls.Default = l
		} else {
			ls.Components[comp] = l
		}
	}
	return ls, nil
}

// NewLogger builds a text logger writing to w with per-component levels
// (taken from each record's "component" attribute).
func NewLogger(w io.Writer, spec LevelSpec) *slog.Logger {
	return slog.New(&levelHandler{next: slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}), spec: spec, level: spec.Default})
}

type levelHandler struct {
	next  slog.Handler
	spec  LevelSpec
	level slog.Level
}

func (h *levelHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.level {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	level := h.level
	for _, a := range as {
		if a.Key == "component" {
			if l, ok := h.spec.Components[a.Value.String()]; ok {
				level = l
			}
		}
	}
	return &levelHandler{next: h.next.WithAttrs(as), spec: h.spec, level: level}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{next: h.next.WithGroup(name), spec: h.spec, level: h.level}
}
