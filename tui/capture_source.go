package tui

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"ezio/disks"
	"ezio/tui/format"
)

// sourceKind is how a source is captured.
type sourceKind int

const (
	// sourceUnknown: a typed path, or a disk nothing is known of; the
	// capture decides as `ezio capture` does (a block device with a
	// partition table is captured whole, anything else as one partition).
	sourceUnknown sourceKind = iota
	sourcePartition
	sourceDisk
)

// captureSources lists what this machine can capture: each disk, then
// its partitions, as the Deploy target table does; a row that cannot be
// captured says why. Only mounts forbid reading: a mounted partition, or
// a disk any of whose partitions (or itself) is mounted, with every
// mount point.
func captureSources(ds []disks.Disk) ([]targetRow, []sourceKind) {
	var rows []targetRow
	var kinds []sourceKind
	for _, d := range ds {
		r := targetRow{name: d.Name, path: d.Path, model: d.Model, fs: d.FSType, label: d.Label, mount: d.MountPoint, size: d.Size, parts: len(d.Partitions)}
		if d.BackingFile != "" {
			r.model = d.BackingFile
		}
		// mounted names each mount (for the reason in full), points the
		// mount points (for the table's column).
		var mounted, points []string
		if d.MountPoint != "" {
			mounted, points = append(mounted, d.Path+" on "+d.MountPoint), append(points, d.MountPoint)
		}
		for _, p := range d.Partitions {
			if p.MountPoint != "" {
				mounted, points = append(mounted, p.Path+" on "+p.MountPoint), append(points, p.MountPoint)
			}
		}
		r.mount = strings.Join(points, ", ")
		kind := sourceUnknown
		switch {
		case len(d.Partitions) > 0:
			kind = sourceDisk
		case d.FSType != "":
			kind = sourcePartition // a filesystem on the whole device
		}
		switch {
		case len(mounted) == 1 && d.MountPoint != "":
			r.problem = "it is mounted on " + d.MountPoint + "; unmount it first"
		case len(mounted) > 0:
			r.problem = "its partitions are mounted: " + strings.Join(mounted, ", ") + "; unmount them first"
		}
		rows, kinds = append(rows, r), append(kinds, kind)
		for _, p := range d.Partitions {
			pr := targetRow{name: p.Name, path: p.Path, fs: p.FSType, label: p.Label, mount: p.MountPoint, size: p.Size, part: true}
			if p.MountPoint != "" {
				pr.problem = "it is mounted on " + p.MountPoint + "; unmount it first"
			}
			rows, kinds = append(rows, pr), append(kinds, sourcePartition)
		}
	}
	return rows, kinds
}

// sourceField is Capture's first question: a table of this machine's
// disks and partitions to choose from with the arrows, or a path typed
// (an image file, a device not listed). Typing always goes to the path;
// Enter takes the typed path if there is one, else the row under the
// cursor. It is a huh field so that the rest of the form, and the form
// shown again after a failure, work as for any other question.
type sourceField struct {
	c       *Common
	v       *CaptureValues
	table   *TargetTable
	kinds   []sourceKind
	listErr error
	input   textinput.Model
	focused bool
	err     error
	theme   *huh.Theme
	keymap  huh.InputKeyMap
	up      key.Binding
	down    key.Binding
	width   int
	maxRows int
}

func newSourceField(c *Common, v *CaptureValues, list func() ([]disks.Disk, error)) *sourceField {
	f := &sourceField{c: c, v: v, table: &TargetTable{c: c}}
	if list != nil {
		ds, err := list()
		f.listErr = err
		f.table.rows, f.kinds = captureSources(ds)
	} else {
		f.listErr = errors.New("no disk list here")
	}
	f.input = textinput.New()
	f.input.Prompt = "or type a path: "
	f.input.Placeholder = "an image file, a device"
	up, down := "↑", "↓"
	if c.Styles.ASCII {
		up, down = "up", "down"
	}
	f.up = key.NewBinding(key.WithKeys("up", "pgup", "home"), key.WithHelp(up+"/"+down, "choose"))
	f.down = key.NewBinding(key.WithKeys("down", "pgdown", "end"))
	// Start on the source kept from last time, else on the first row
	// that can be captured.
	f.table.cursor = -1
	for i, r := range f.table.rows {
		if v.Source != "" && r.path == trimmed(v.Source) {
			f.table.cursor = i
		}
	}
	if f.table.cursor < 0 {
		f.input.SetValue(v.Source)
		f.table.cursor = 0
		for i, r := range f.table.rows {
			if r.problem == "" {
				f.table.cursor = i
				break
			}
		}
	}
	f.maxRows = max(3, c.Height-17)
	return f
}

// chosen is what Enter would take: the path, its row (or -1) and kind.
func (f *sourceField) chosen() (string, int) {
	if p := trimmed(f.input.Value()); p != "" {
		for i, r := range f.table.rows {
			if r.path == p {
				return p, i
			}
		}
		return p, -1
	}
	if len(f.table.rows) == 0 {
		return "", -1
	}
	return f.table.rows[f.table.cursor].path, f.table.cursor
}

func (f *sourceField) kindOf(row int) sourceKind {
	if row < 0 {
		return sourceUnknown
	}
	return f.kinds[row]
}

func (f *sourceField) Init() tea.Cmd { return nil }

func (f *sourceField) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if !f.focused {
		return f, nil
	}
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		var cmd tea.Cmd
		f.input, cmd = f.input.Update(msg) // the cursor's blink
		return f, cmd
	}
	f.err = nil
	switch {
	case key.Matches(k, f.keymap.Prev):
		return f, huh.PrevField
	case key.Matches(k, f.keymap.Next, f.keymap.Submit):
		path, row := f.chosen()
		switch {
		case path == "":
			f.err = errors.New("choose a disk or a partition, or type a path")
			return f, nil
		case row >= 0 && f.table.rows[row].problem != "":
			f.err = fmt.Errorf("%s cannot be captured: %s", path, f.table.rows[row].problem)
			return f, nil
		}
		f.v.Source, f.v.WholeDisk = path, f.kindOf(row) == sourceDisk
		return f, huh.NextField
	case key.Matches(k, f.up, f.down): // no letters: they go to the path
		// Choosing a row drops what was typed: Enter takes the row.
		f.input.SetValue("")
		n := len(f.table.rows)
		switch k.Type {
		case tea.KeyUp:
			f.table.cursor = max(0, f.table.cursor-1)
		case tea.KeyDown:
			f.table.cursor = min(n-1, f.table.cursor+1)
		case tea.KeyPgUp:
			f.table.cursor = max(0, f.table.cursor-f.maxRows)
		case tea.KeyPgDown:
			f.table.cursor = min(n-1, f.table.cursor+f.maxRows)
		case tea.KeyHome:
			f.table.cursor = 0
		case tea.KeyEnd:
			f.table.cursor = n - 1
		}
		f.table.cursor = max(0, f.table.cursor)
		return f, nil
	}
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	return f, cmd
}

func (f *sourceField) styles() *huh.FieldStyles {
	t := f.theme
	if t == nil {
		t = huh.ThemeBase()
	}
	if f.focused {
		return &t.Focused
	}
	return &t.Blurred
}

// describe says what capturing a row means, or why it cannot be.
func (f *sourceField) describe(path string, row int) (string, bool) {
	if row >= 0 && f.table.rows[row].problem != "" {
		return path + " cannot be captured: " + f.table.rows[row].problem, false
	}
	switch f.kindOf(row) {
	case sourceDisk:
		r := f.table.rows[row]
		return fmt.Sprintf("%s whole: partition table, boot areas, %d partitions", path, r.parts), true
	case sourcePartition:
		return path + " as one partition, with partclone", true
	}
	if path == "" {
		return "nothing to capture here: type a path", false
	}
	return path + ": whole if it is a disk with a partition table, else as one partition", true
}

// what is a row's filesystem and label as the table shows them.
func (r targetRow) what() string {
	s := r.fs
	if !r.part && r.parts > 0 {
		s = fmt.Sprintf("%d partitions", r.parts)
		if r.parts == 1 {
			s = "1 partition"
		}
	}
	if r.label != "" {
		s += " " + r.label
	}
	if s == "" {
		s = "-"
	}
	return s
}

func (f *sourceField) View() string {
	st, c := f.styles(), f.c.Styles
	w := max(20, f.width-st.Base.GetHorizontalFrameSize())
	var b strings.Builder
	b.WriteString(st.Title.Render("What to capture") + "\n")
	path, row := f.chosen()
	if !f.focused {
		text, _ := f.describe(path, row)
		b.WriteString(st.Description.Render(fit(text, w)))
		return st.Base.Width(f.width).Render(b.String())
	}
	b.WriteString(st.Description.Render(fit("a whole disk (every partition) or one partition; it must not be mounted", w)) + "\n")
	typed := trimmed(f.input.Value()) != ""
	rowLine := func(cur, name, size, what, state string) string {
		return fit(fmt.Sprintf("%s%-12.12s%9s  %-18.18s %s", cur, name, size, what, state), w)
	}
	b.WriteString(c.Muted.Render(rowLine("  ", "NAME", "SIZE", "FILESYSTEM, LABEL", "CAPTURED AS / CANNOT BE")) + "\n")
	t := f.table
	if len(t.rows) == 0 {
		why := "no disks found"
		if f.listErr != nil {
			why = "could not list the disks: " + f.listErr.Error()
		}
		b.WriteString(c.Muted.Render(fit("  "+why, w)) + "\n")
	}
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+f.maxRows {
		t.offset = t.cursor - f.maxRows + 1
	}
	for i := t.offset; i < min(len(t.rows), t.offset+f.maxRows); i++ {
		r := t.rows[i]
		name := r.name
		if r.part {
			name = " " + name
		}
		state := r.problem
		switch {
		case state != "":
			state = "no, mounted: " + r.mount
		case f.kinds[i] == sourceDisk:
			state = "whole disk"
		case f.kinds[i] == sourcePartition:
			state = "partition"
		default:
			state = "whole disk if partitioned"
		}
		cur := "  "
		if i == t.cursor && !typed {
			cur = c.Glyphs.Cursor + " "
		}
		line := rowLine(cur, name, format.Bytes(r.size), r.what(), state)
		switch {
		case i == t.cursor && !typed:
			line = c.Selected.Render(line)
		case r.problem != "":
			line = c.Disabled.Render(line)
		default:
			line = c.Text.Render(line)
		}
		b.WriteString(line + "\n")
	}
	text, good := f.describe(path, row)
	style := c.Warn
	if good {
		text, style = "Enter captures "+text, c.Good
	}
	for _, l := range wrap(text, w) {
		b.WriteString(style.Render(fit(l, w)) + "\n")
	}
	f.input.PromptStyle = st.TextInput.Prompt
	f.input.TextStyle = st.TextInput.Text
	f.input.PlaceholderStyle = st.TextInput.Placeholder
	f.input.Cursor.Style = st.TextInput.Cursor
	f.input.Cursor.TextStyle = st.TextInput.CursorText
	f.input.Width = max(10, w-len(f.input.Prompt)-1)
	b.WriteString(f.input.View())
	return st.Base.Width(f.width).Render(b.String())
}

func (f *sourceField) Focus() tea.Cmd {
	f.focused = true
	return f.input.Focus()
}

func (f *sourceField) Blur() tea.Cmd {
	f.focused = false
	f.input.Blur()
	return nil
}

func (f *sourceField) Error() error { return f.err }
func (f *sourceField) Skip() bool   { return false }
func (f *sourceField) Zoom() bool   { return false }

func (f *sourceField) KeyBinds() []key.Binding {
	return []key.Binding{f.up, f.keymap.Prev, f.keymap.Next, f.keymap.Submit}
}

func (f *sourceField) Run() error { return huh.Run(f) }

func (f *sourceField) RunAccessible(w io.Writer, r io.Reader) error {
	return errors.New("the capture source needs the full screen")
}

func (f *sourceField) WithTheme(t *huh.Theme) huh.Field {
	if f.theme == nil {
		f.theme = t
	}
	return f
}

func (f *sourceField) WithAccessible(bool) huh.Field { return f }

func (f *sourceField) WithKeyMap(k *huh.KeyMap) huh.Field {
	f.keymap = k.Input
	return f
}

func (f *sourceField) WithWidth(w int) huh.Field {
	f.width = w
	return f
}

func (f *sourceField) WithHeight(int) huh.Field { return f }

func (f *sourceField) WithPosition(p huh.FieldPosition) huh.Field {
	f.keymap.Prev.SetEnabled(!p.IsFirst())
	f.keymap.Next.SetEnabled(!p.IsLast())
	f.keymap.Submit.SetEnabled(p.IsLast())
	return f
}

func (f *sourceField) GetKey() string { return "source" }
func (f *sourceField) GetValue() any  { return f.v.Source }

// skippedFor is a field that a whole disk does not ask: it is skipped
// and says why in its place.
type skippedFor struct {
	huh.Field
	skip  func() bool
	title string
	note  string
	theme *huh.Theme
	width int
}

func (s *skippedFor) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := s.Field.Update(msg)
	s.Field = m.(huh.Field)
	return s, cmd
}

func (s *skippedFor) Skip() bool { return s.skip() }

func (s *skippedFor) View() string {
	if !s.skip() {
		return s.Field.View()
	}
	t := s.theme
	if t == nil {
		t = huh.ThemeBase()
	}
	st := t.Blurred
	return st.Base.Width(s.width).Render(st.Title.Render(s.title) + "\n" + st.Description.Render(s.note))
}

func (s *skippedFor) WithTheme(t *huh.Theme) huh.Field {
	s.theme = t
	s.Field.WithTheme(t)
	return s
}

func (s *skippedFor) WithWidth(w int) huh.Field {
	s.width = w
	s.Field.WithWidth(w)
	return s
}

func (s *skippedFor) WithKeyMap(k *huh.KeyMap) huh.Field {
	s.Field.WithKeyMap(k)
	return s
}

func (s *skippedFor) WithHeight(h int) huh.Field {
	s.Field.WithHeight(h)
	return s
}

func (s *skippedFor) WithPosition(p huh.FieldPosition) huh.Field {
	s.Field.WithPosition(p)
	return s
}

func (s *skippedFor) WithAccessible(a bool) huh.Field {
	s.Field.WithAccessible(a)
	return s
}
