package tui

import (
	"fmt"
	"os"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/engine"
)

// ServeValues are what the Serve form asks; kept between visits.
type ServeValues struct {
	Torrent, Source, TrackerListen string
	Tracker                        bool
}

// ServeFlow asks for a torrent, its data and where to listen, then opens
// the seeder's dashboard.
type ServeFlow struct {
	c      *Common
	deps   *Deps
	v      *ServeValues
	form   *huh.Form
	formID int
	busy   bool
}

func NewServeFlow(c *Common, deps *Deps, v *ServeValues) *ServeFlow {
	if v.TrackerListen == "" {
		v.TrackerListen = fmt.Sprintf(":%d", engine.DefaultTrackerPort)
		v.Tracker = true
	}
	s := &ServeFlow{c: c, deps: deps, v: v}
	nonEmpty := func(what string) func(string) error {
		return func(s string) error {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s is needed", what)
			}
			return nil
		}
	}
	exists := func(s string) error {
		if err := nonEmpty("a path")(s); err != nil {
			return err
		}
		if _, err := os.Stat(strings.TrimSpace(s)); err != nil {
			return fmt.Errorf("%s: no such file or device", s)
		}
		return nil
	}
	s.form, s.formID = newForm(c, huh.NewGroup(
		huh.NewInput().Title("Torrent file").Description("made by Capture or Build a torrent").Value(&v.Torrent).Validate(exists),
		huh.NewInput().Title("Image data").Description("the extent directory, image file or partition the torrent describes").Value(&v.Source).Validate(exists),
		huh.NewConfirm().Title("Run the tracker and image server here?").
			Description("Yes: clients only need this machine's address. No: use the torrent's own tracker.").
			Affirmative("Yes").Negative("No").Value(&v.Tracker),
		huh.NewInput().Title("Tracker and image server address").Description("HOST:PORT; :6969 listens on every interface").Value(&v.TrackerListen).Validate(nonEmpty("an address")),
	))
	return s
}

func (s *ServeFlow) Init() tea.Cmd { return s.form.Init() }

func (s *ServeFlow) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if key.Matches(msg, s.c.Keys.Back) {
			return s, func() tea.Msg { return backToMenuMsg{} }
		}
	case formDoneMsg:
		if msg.id == s.formID {
			return s, s.start()
		}
		return s, nil
	}
	_, cmd := s.form.Update(msg)
	return s, cmd
}

func (s *ServeFlow) start() tea.Cmd {
	v := s.v
	ctx := s.deps.Ctx
	mi, err := engine.LoadTorrent(ctx, strings.TrimSpace(v.Torrent))
	if err != nil {
		return showError("Could not read the torrent", err, "Choose a .torrent made by ezio (Capture or Build a torrent).", NewServeFlow(s.c, s.deps, v))
	}
	j, err := s.deps.Seed(ctx, engine.SeedOptions{
		Torrent: mi, Source: strings.TrimSpace(v.Source), TrackerListen: v.TrackerListen, NoTracker: !v.Tracker,
		Tuning: s.deps.Tuning, Logger: s.deps.Logger,
	})
	if err != nil {
		return showError("Could not serve the image", err, "Check that the data matches the torrent and that the ports are free (Settings, listen port).", NewServeFlow(s.c, s.deps, v))
	}
	return show(NewDashboard(s.c, engine.RoleSeed, "seed "+j.Name(), j))
}

func (s *ServeFlow) View() string {
	c, st := s.c, s.c.Styles
	lines := []string{c.titleBar("serve an image", ""), ""}
	lines = append(lines, indent(strings.Split(s.form.View(), "\n"), 1)...)
	for len(lines) < c.Height-1 {
		lines = append(lines, "")
	}
	lines = append(lines[:c.Height-1], " "+st.HelpKey.Render("esc")+st.HelpDesc.Render(" back  ")+st.HelpKey.Render("enter")+st.HelpDesc.Render(" next  ")+st.HelpKey.Render("shift+tab")+st.HelpDesc.Render(" previous field"))
	return c.screen(lines)
}
