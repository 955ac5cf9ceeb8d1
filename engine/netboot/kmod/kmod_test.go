package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMatchByModaliasAndOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"+
			"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"+
			"kernel/net/core/failover.ko:\n"+
			"kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko\n"+
			"kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"+
			"kernel/drivers/ata/ata_piix.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte(
		"# Aliases extracted from modules themselves.\n"+
			"alias virtio:d00000001v* virtio_net\n"+
			"alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"+
			"alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix\n"+
			"alias pci:v00008086d00007010sv*sd*bc01sc01i* not_in_initramfs\n"), 0o644)
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"virtio:d00000001v00001AF4":                             {"virtio_net"},
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00": {"virtio_pci"},
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80": {"ata_piix"},
		"pci:v000010DEd00001234sv0sd0bc03sc00i00":               nil,
	}
	for ma, want := range cases {
		if got := ix.Match(ma); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, want %v", ma, got, want)
		}
	}
	order, err := ix.Order("virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("Order = %v, want %v", order, want)
	}
}

func TestModaliasesWalksSysfs(t *testing.T) {
	dir := t.TempDir()
	for p, v := range map[string]string{
		"pci0000:00/0000:00:03.0/modalias":               "pci:v00001AF4d00001000\n",
		"pci0000:00/0000:00:03.0/virtio0/modalias":       "virtio:d00000001v00001AF4\n",
		"pci0000:00/0000:00:01.0/firmware_node/modalias": "",
		"platform/serial8250/modalias":                   "platform:serial8250",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(v), 0o644)
	}
	got := Modaliases(dir)
	want := []string{"pci:v00001AF4d00001000", "platform:serial8250", "virtio:d00000001v00001AF4"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Modaliases = %v, want %v", got, want)
	}
}
