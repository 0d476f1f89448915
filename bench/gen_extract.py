#!/usr/bin/env python3
"""Generates a synthetic ANS extract (Extraction_Correspondance_MSSante: header + ROWS rows of
31 `|`-separated columns, 85 % PER, 15 % ORG, like the real one), the same entries as LDIF
under mssante's schema (for the ldapadd reference), and a list of the addresses.

    gen_extract.py ROWS EXTRACT LDIF ADDRESSES BASE_DN
"""
import random
import sys

HEADER = ("Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|"
          "Type identifiant structure|Identification Structure|Service de rattachement|"
          "Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|"
          "Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|"
          "Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|"
          "Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|"
          "L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|"
          "L4COMPLEMENTNUMEROVOIE structure BAL|NL4TYPEVOIE structure BAL|"
          "L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|"
          "L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|"
          "Département structure BAL|Pays structure BAL")
SURNAMES = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND",
            "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID"]
GIVEN = ["Jean", "Marie", "Pierre", "Sophie", "Luc", "Claire", "Paul", "Anne", "Louis", "Julie"]
SERVICES = ["Cardiologie", "Pédiatrie", "Radiologie", "Urgences", "Biologie", "Pharmacie"]
DOMAINS = [f"etab{n}.mssante.fr" for n in range(200)] + ["medecin.mssante.fr", "pharmacien.mssante.fr"]


def main():
    rows, extract, ldif, addresses, base = sys.argv[1:6]
    rows = int(rows)
    rnd = random.Random(42)
    with open(extract, "w", encoding="utf-8") as e, open(ldif, "w", encoding="utf-8") as l, \
            open(addresses, "w") as a:
        e.write(HEADER + "\n")
        for n in range(rows):
            domain = rnd.choice(DOMAINS)
            finess = f"{750000000 + n % 5000:09d}"
            service = rnd.choice(SERVICES)
            if rnd.random() < 0.85:
                surname, given = rnd.choice(SURNAMES), rnd.choice(GIVEN)
                address = f"{given.lower()}.{surname.lower()}.{n}@{domain}"
                idnat = f"8{10000000000 + n:011d}"
                fields = ["PER", address, "8", idnat[1:], idnat, "1", finess, service, "DR",
                          surname, given, "C", "Civil", "10", "Médecin", "", "", "O",
                          "CENTRE HOSPITALIER", ""] + [""] * 11
                entry = [("objectClass", "mssPersonMailbox"), ("mssMailboxType", "PER"),
                         ("mssOwnerIdNat", idnat), ("sn", surname), ("givenName", given),
                         ("cn", f"{given} {surname}"), ("displayName", f"{given} {surname}"),
                         ("mssProfessionCode", "10"), ("description", "Médecin")]
            else:
                address = f"service.{n}@{domain}"
                fields = ["ORG", address, "", "", "", "1", finess, service, "", "", "", "", "",
                          "", "", "", "", "N", "CENTRE HOSPITALIER", ""] + [""] * 11
                entry = [("objectClass", "mssOrganisationMailbox"), ("mssMailboxType", "ORG"),
                         ("cn", service), ("displayName", service),
                         ("description", "CENTRE HOSPITALIER")]
            e.write("|".join(fields) + "\n")
            a.write(address + "\n")
            l.write(f"dn: mail={address},{base}\nmail: {address}\n")
            for name, value in entry + [("mssStructureId", finess), ("mssService", service),
                                        ("mssDematerialisation", fields[17]),
                                        ("mssListeRouge", "N")]:
                l.write(f"{name}: {value}\n")
            l.write("\n")


main()
