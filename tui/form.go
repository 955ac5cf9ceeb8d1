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

// newForm builds a fresh huh form for one question step, themed and
// sized for the screen. Esc and Ctrl-C stay with the wizard.
func newForm(c *Common, groups ...*huh.Group) (*huh.Form, int) {
	id := newID()
	km := huh.NewDefaultKeyMap()
	km.Quit = key.NewBinding(key.WithDisabled())
	// Lists here are short: no filter, and "back" is the wizard's Esc.
	km.Select.Filter.SetEnabled(false)
	for _, b := range []*key.Binding{&km.Input.Prev, &km.Select.Prev, &km.Confirm.Prev, &km.MultiSelect.Prev, &km.Text.Prev, &km.Note.Prev, &km.FilePicker.Prev} {
		b.SetHelp("shift+tab", "previous")
	}
	if c.Styles.ASCII {
		asciiFormKeys(km)
	}
	// The form's own help line is off: the screen's footer lists the
	// form's keys with its own (see DeployFlow.keys), in one style.
	f := huh.NewForm(groups...).
		WithTheme(huhTheme(c.Styles)).
		WithKeyMap(km).
		WithWidth(min(c.Width-4, 76)).
		WithShowHelp(false)
	// huh sizes a group when it is made, at 80 columns: at the real width
	// descriptions wrap further and the last line would be cut. A fixed
	// height lets the form scroll to the focused field instead.
	f = f.WithHeight(max(6, c.Height-6))
	f.SubmitCmd = func() tea.Msg { return formDoneMsg{id} }
	return f, id
}

// asciiFormKeys names the form's keys without arrows or fractions.
func asciiFormKeys(km *huh.KeyMap) {
	for _, b := range []*key.Binding{&km.Select.Up, &km.MultiSelect.Up, &km.FilePicker.Up} {
		b.SetHelp("up/k", "up")
	}
	for _, b := range []*key.Binding{&km.Select.Down, &km.MultiSelect.Down, &km.FilePicker.Down} {
		b.SetHelp("down/j", "down")
	}
	km.Select.Left.SetHelp("left", "previous")
	km.Select.Right.SetHelp("right", "next")
	km.Confirm.Toggle.SetHelp("left/right", "toggle")
	for _, b := range []*key.Binding{&km.Select.HalfPageUp, &km.MultiSelect.HalfPageUp} {
		b.SetHelp("ctrl+u", "half page up")
	}
	for _, b := range []*key.Binding{&km.Select.HalfPageDown, &km.MultiSelect.HalfPageDown} {
		b.SetHelp("ctrl+d", "half page down")
	}
}

// formKeys is the footer of a question screen: back, the focused
// field's keys, quit.
func formKeys(c *Common, f *huh.Form, back string) []key.Binding {
	k := c.Keys
	bs := []key.Binding{as(k.Back, back)}
	if f != nil {
		bs = append(bs, f.KeyBinds()...)
	}
	return append(bs, as(k.ForceQuit, "quit"))
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
		t.Focused.SelectedPrefix = t.Focused.SelectedPrefix.SetString("[x] ")
		t.Focused.UnselectedPrefix = t.Focused.UnselectedPrefix.SetString("[ ] ")
		t.Focused.ErrorIndicator = t.Focused.ErrorIndicator.SetString(" *")
		t.Blurred.SelectSelector = t.Blurred.SelectSelector.SetString("  ")
		t.Blurred.SelectedPrefix = t.Focused.SelectedPrefix
		t.Blurred.UnselectedPrefix = t.Focused.UnselectedPrefix
	}
	if st.Palette.Name == "classic" {
		// The form's cells take the dialog's blue too.
		bg := st.Palette.Bg
		for _, fs := range []*huh.FieldStyles{&t.Focused, &t.Blurred} {
			for _, s := range []*lipgloss.Style{&fs.Base, &fs.Title, &fs.Description, &fs.ErrorIndicator, &fs.ErrorMessage,
				&fs.SelectSelector, &fs.Option, &fs.NextIndicator, &fs.PrevIndicator, &fs.SelectedOption, &fs.SelectedPrefix,
				&fs.UnselectedOption, &fs.UnselectedPrefix, &fs.TextInput.Text, &fs.TextInput.Prompt, &fs.TextInput.Placeholder, &fs.BlurredButton} {
				*s = s.Background(bg)
			}
		}
	}
	if st.ASCII {
		// No bright colours (SGR 90-97, 100-107) on the console for what
		// carries meaning: the focused choice, the button, the error.
		t.Focused.SelectSelector = t.Focused.SelectSelector.Foreground(st.Palette.Accent).Bold(true)
		t.Focused.SelectedOption = t.Focused.SelectedOption.Foreground(st.Palette.Accent).Bold(true)
		t.Focused.Title = t.Focused.Title.Foreground(st.Palette.Accent).Bold(true)
		t.Focused.Description = t.Focused.Description.Foreground(st.Palette.Fg)
		t.Blurred.Title = t.Blurred.Title.Foreground(st.Palette.Fg)
		t.Blurred.Description = t.Blurred.Description.Foreground(st.Palette.Fg)
		t.Blurred.TextInput.Prompt = t.Blurred.TextInput.Prompt.Foreground(st.Palette.Fg)
		t.Focused.ErrorMessage = t.Focused.ErrorMessage.Foreground(st.Palette.Bad).Bold(true)
		t.Focused.ErrorIndicator = t.Focused.ErrorIndicator.Foreground(st.Palette.Bad).Bold(true)
		t.Focused.FocusedButton = t.Focused.FocusedButton.Foreground(lipgloss.Color("0")).Background(st.Palette.Accent).Bold(true)
		t.Focused.BlurredButton = t.Focused.BlurredButton.Foreground(st.Palette.Fg).Background(lipgloss.Color("0"))
		t.Focused.TextInput.Placeholder = t.Focused.TextInput.Placeholder.Foreground(st.Palette.Muted)
		t.Blurred.TextInput.Placeholder = t.Focused.TextInput.Placeholder
		t.Focused.Base = t.Focused.Base.BorderForeground(st.Palette.Accent)
		t.Blurred.Base = t.Blurred.Base.BorderForeground(st.Palette.Fg)
		t.Blurred.TextInput.Text = t.Blurred.TextInput.Text.Foreground(st.Palette.Fg)
		t.Blurred.NoteTitle = t.Blurred.NoteTitle.Foreground(st.Palette.Fg)
	}
	return t
}
