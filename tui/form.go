package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/lipgloss"

	"ezio/themes"
)

// formDoneMsg says the form of step id was completed.
type formDoneMsg struct{ id int }

var nextFormID int

// newForm builds a fresh huh form for one question step, themed and
// sized for the screen. Esc and Ctrl-C stay with the wizard.
func newForm(c *Common, groups ...*huh.Group) (*huh.Form, int) {
	nextFormID++
	id := nextFormID
	km := huh.NewDefaultKeyMap()
	km.Quit = key.NewBinding(key.WithDisabled())
	f := huh.NewForm(groups...).
		WithTheme(huhTheme(c.Styles)).
		WithKeyMap(km).
		WithWidth(min(c.Width-4, 76)).
		WithShowHelp(true)
	f.SubmitCmd = func() tea.Msg { return formDoneMsg{id} }
	return f, id
}

func huhTheme(st themes.Styles) *huh.Theme {
	var t *huh.Theme
	if st.Name == "mono" {
		t = huh.ThemeBase()
	} else {
		t = huh.ThemeBase16()
	}
	if st.ASCII {
		// The console font has no heavy vertical bar.
		t.Focused.Base = t.Focused.Base.BorderStyle(themes.ASCIIBorder)
		t.Blurred.Base = t.Blurred.Base.BorderStyle(lipgloss.HiddenBorder())
		t.Focused.SelectSelector = t.Focused.SelectSelector.SetString("> ")
		t.Focused.NextIndicator = t.Focused.NextIndicator.SetString(" >")
		t.Focused.PrevIndicator = t.Focused.PrevIndicator.SetString("< ")
	}
	return t
}
