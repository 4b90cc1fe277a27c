#!/usr/bin/env python3
"""Turns an 8 kHz mono 16-bit WAV into a pcap of RTP/PCMA packets (20 ms each)
that sipp's `play_pcap_audio` can replay. Used at development time to make
tests/sipp/speech-10s.pcap (committed) from espeak-ng speech:

    espeak-ng -v en-us -s 150 -w /tmp/s.wav "…"
    sox /tmp/s.wav -r 8000 -c 1 -b 16 /tmp/s8k.wav pad 0 1 trim 0 10
    tools/make-speech-pcap.py /tmp/s8k.wav tests/sipp/speech-10s.pcap
"""
import struct, sys, wave

def alaw(sample):
    # ITU G.711 A-law (G.191 reference form).
    sign = 0x80 if sample >= 0 else 0x00
    if sample < 0:
        sample = -sample - 1
    sample >>= 3  # 13-bit magnitude
    if sample >= 0x1000:
        sample = 0xFFF
    if sample < 32:
        code = sample >> 1
    else:
        seg = 1
        v = sample >> 5
        while v > 1:
            v >>= 1
            seg += 1
        code = (seg << 4) | ((sample >> seg) & 0x0F)
    return (code | sign) ^ 0x55

def main(src, dst):
    w = wave.open(src, "rb")
    assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2, "need 8 kHz mono 16-bit"
    pcm = struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes()))
    out = open(dst, "wb")
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    seq, ts, ssrc = 1, 0, 0x5EED5EED
    for i in range(0, len(pcm) - 159, 160):
        payload = bytes(alaw(s) for s in pcm[i:i + 160])
        rtp = struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), seq & 0xFFFF, ts, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        eth = b"\x00" * 12 + b"\x08\x00" + ip
        t = i // 160 * 0.02
        out.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(eth), len(eth)) + eth)
        seq += 1
        ts += 160
    out.close()

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
