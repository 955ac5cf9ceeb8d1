// Package server is the HTTP side of a seeder: the tracker (an HTTP front
// over a protocol-neutral announce), the image server (/images.json,
// /images/NAME, /torrents/NAME.torrent, disk image manifests), the status
// page and /status.json, the allow list, and the bookkeeping of the room
// (the fleet of clients per image, the counter handed out for hostnames,
// netbooted machines). It knows nothing of jobs or sessions: the engine
// adds torrents and gives, per seeded torrent, a witness of what the
// seeder saw over BitTorrent (ConnWitness) and callbacks for its health
// and its clients.
package server
