#!/usr/bin/env python3
"""Writes COUNT messages for the IMAP benchmark as "MSG <len>\\n<bytes>" records: a mix of
plain text (60 %), text with a PDF attachment (30 %) and replies in threads (10 %), 2 to
60 KiB, with the headers Thunderbird asks for. Deterministic (seeded)."""
import base64, random, sys

count, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
words = ("patient bilan sanguin compte rendu consultation cardiologie radio thorax suivi "
         "traitement ordonnance hospitalisation sortie urgence garde planning").split()
with open(out, "wb") as f:
    for n in range(1, count + 1):
        subject = "%s %d" % (" ".join(rng.choice(words) for _ in range(2)), n % 100)
        head = (
            "Message-ID: <m%d@hopital.test>\r\n"
            "Date: Mon, %d Jan 2026 %02d:%02d:00 +0100\r\n"
            "From: Dr %s <medecin%d@hopital.test>\r\n"
            "To: dr.bench@hopital.test\r\n"
            "Subject: %s\r\n"
            "MIME-Version: 1.0\r\n"
        ) % (n, 1 + n % 28, n % 24, n % 60, rng.choice(words).title(), n % 50, subject)
        if n % 10 == 0:
            head += "In-Reply-To: <m%d@hopital.test>\r\nReferences: <m%d@hopital.test>\r\n" % (n - 1, n - 1)
        text = " ".join(rng.choice(words) for _ in range(rng.randint(300, 2000)))
        lines = "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))
        if n % 10 in (1, 4, 7):
            pdf = base64.encodebytes(rng.randbytes(rng.randint(2000, 40000))).decode().replace("\n", "\r\n")
            body = (
                "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--b%d\r\n"
                "Content-Type: application/pdf; name=\"cr%d.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "Content-Disposition: attachment; filename=\"cr%d.pdf\"\r\n\r\n%s--b%d--\r\n"
            ) % (n, n, lines, n, n, n, pdf, n)
        else:
            body = "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % lines
        message = (head + body).encode()
        f.write(b"MSG %d\n" % len(message))
        f.write(message)
