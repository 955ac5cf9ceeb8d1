package tui

import (
	"encoding/json"
	"errors"
	"ezio/engine/atomicfile"
	"fmt"
	"os"
	"path/filepath"

	"ezio/engine"
)

// Config is what Settings saves: ~/.config/ezio/config.json.
type Config struct {
	Theme          string `json:"theme,omitempty"`
	AIOThreads     int    `json:"aio_threads,omitempty"`
	HashingThreads int    `json:"hashing_threads,omitempty"`
	CacheSizeMiB   int    `json:"cache_size_mib,omitempty"`
	ListenPort     int    `json:"listen_port,omitempty"`
}

// DefaultConfigPath is where the wizard keeps its settings.
func DefaultConfigPath() string {
	d, err := os.UserConfigDir()
	if err != nil {
		d = filepath.Join(os.TempDir(), ".config")
	}
	return filepath.Join(d, "ezio", "config.json")
}

// LoadConfig reads the settings; a missing file is an empty Config.
func LoadConfig(path string) (*Config, error) {
	c := &Config{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return &Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes the settings atomically and durably: a temporary file in
// the same directory, synced, then renamed over the old one.
func (c *Config) Save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

// Apply lays the settings over t as if no flag had been given: the
// file wins over every value in t. The command line should call Over.
func (c *Config) Apply(t engine.Tuning) engine.Tuning { return c.Over(t, nil) }

// Over lays the settings over t with the precedence a technician
// expects: a flag given on the command line, then the settings file, then
// the defaults. explicit says whether a flag was given by name ("aio-threads",
// "hashing-threads", "cache-size", "listen"), as pflag's FlagSet.Changed
// does; nil means none was.
func (c *Config) Over(t engine.Tuning, explicit func(flag string) bool) engine.Tuning {
	given := func(flag string) bool { return explicit != nil && explicit(flag) }
	if c.AIOThreads > 0 && !given("aio-threads") {
		t.AIOThreads = c.AIOThreads
	}
	if c.HashingThreads > 0 && !given("hashing-threads") {
		t.HashingThreads = c.HashingThreads
	}
	if c.CacheSizeMiB > 0 && !given("cache-size") {
		t.CacheSizeMiB = c.CacheSizeMiB
	}
	if c.ListenPort > 0 && !given("listen") && t.ListenAddr == "" {
		t.ListenAddr = fmt.Sprintf("0.0.0.0:%d", c.ListenPort)
	}
	return t
}
