#!/usr/bin/env python3
"""STAND-IN for WSO2's cipher tool, `ciphertool.sh -Dconfigure` as API-M 4.2-4.7 ship it (wso2/cipher-tool v1.1.28,
CipherTool.java and Utils.java; research notes in docs/secure-vault.md):

- the keystore password: the JVM system property keystore.password (from `-Dpassword=...` or, as any JVM does, from
  JAVA_TOOL_OPTIONS, which it announces on stderr: "Picked up JAVA_TOOL_OPTIONS: ..."); none: the tool asks the
  console, and without one fails;
- the keystore: deployment.toml's [keystore.primary] file_name, type, alias (defaults wso2carbon.jks, JKS, wso2carbon);
- the certificate as Java's Cipher.init takes it: a critical key usage without dataEncipherment is refused;
- each `alias = "[plaintext]"` after [secrets] becomes `alias = "<base64 of RSA/ECB/PKCS1Padding ciphertext>"` with the
  alias's certificate (Cipher.getInstance("RSA")), the file rewritten in place; a value without brackets is left as it
  is; the section is never seen to end (wso2/api-manager#4561): any later line that is not a secret stops the tool
  with the file already cut there;
- repository/conf/security/secret-conf.properties written for the server.
Crypto through the openssl and keytool commands: the stand-in runs on the machine's python3 with no packages.
"""

import base64
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent
CONF = HOME / "repository" / "conf" / "deployment.toml"
SECRET_CONF = HOME / "repository" / "conf" / "security" / "secret-conf.properties"
SECRET_LINE = re.compile(r'^\s*([A-Za-z0-9_-]+)\s*=\s*"(.*)"\s*$')
PASSWORD_ENV = "STANDIN_CIPHERTOOL_PASSWORD"


def system_property(name: str) -> str | None:
    """As the JVM sets them: from JAVA_TOOL_OPTIONS (every JVM, announced on stderr), JDK_JAVA_OPTIONS (the java launcher
    of 9+ only: JAVA_VERSION 8 leaves it out, as Java 8 does), then the command line."""
    words = []
    for variable, note in (("JAVA_TOOL_OPTIONS", "Picked up JAVA_TOOL_OPTIONS"), ("JDK_JAVA_OPTIONS", "NOTE: Picked up JDK_JAVA_OPTIONS")):
        value = os.environ.get(variable)
        if value and not (variable == "JDK_JAVA_OPTIONS" and os.environ.get("STANDIN_JAVA_VERSION") == "8"):
            print(f"{note}: {value}", file=sys.stderr)
            words += shlex.split(value)
    for word in [*words, *sys.argv[1:]]:
        if word.startswith(f"-D{name}="):
            return word.split("=", 1)[1]
    return None


def certificate(store: Path, alias: str, password: str) -> str:
    exported = subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-alias", alias, "-keystore", str(store), "-storepass:env", PASSWORD_ENV],
        env={**os.environ, PASSWORD_ENV: password},
        capture_output=True,
        text=True,
    )
    if exported.returncode != 0:
        raise SystemExit(f"Error initializing Cipher: {exported.stdout.strip() or exported.stderr.strip()}")
    return exported.stdout


def encrypt(plain: str, cert_pem: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as cert:
        cert.write(cert_pem)
        cert.flush()
        sealed = subprocess.run(
            ["openssl", "pkeyutl", "-encrypt", "-certin", "-inkey", cert.name, "-pkeyopt", "rsa_padding_mode:pkcs1"],
            input=plain.encode(),
            capture_output=True,
            check=True,
        ).stdout
    return base64.b64encode(sealed).decode()


def main() -> int:
    if "-Dconfigure" not in sys.argv[1:]:
        print("STAND-IN cipher tool: only -Dconfigure", file=sys.stderr)
        return 2
    password = system_property("keystore.password") or system_property("password")
    if not password:
        print("[Please Enter Primary KeyStore Password of Carbon Server : ]", file=sys.stderr)
        print('Exception in thread "main" java.lang.NullPointerException: String cannot be null', file=sys.stderr)
        return 1
    primary = tomllib.loads(CONF.read_text()).get("keystore", {}).get("primary", {})
    file_name, store_type, alias = (
        primary.get(k, d) for k, d in (("file_name", "wso2carbon.jks"), ("type", "JKS"), ("alias", "wso2carbon"))
    )
    store = HOME / "repository" / "resources" / "security" / file_name
    print(f"Asymmetric encryption using Primary KeyStore. {{type:{store_type}, alias:{alias}, path:{store}}}")
    cert_pem = certificate(store, alias, password)
    usage = subprocess.run(["openssl", "x509", "-noout", "-ext", "keyUsage"], input=cert_pem, capture_output=True, text=True).stdout
    if "critical" in usage and "Data Encipherment" not in usage:  # javax.crypto.Cipher.init(ENCRYPT_MODE, Certificate)
        print('Exception in thread "main" java.security.InvalidKeyException: Wrong key usage', file=sys.stderr)
        return 1
    lines, kept, in_secrets = CONF.read_text().splitlines(), [], False
    for line in lines:
        if not in_secrets:
            kept.append(line)
            in_secrets = line.strip() == "[secrets]"
            continue
        if not line.strip():
            kept.append(line)
            continue
        found = SECRET_LINE.match(line)
        if not found:
            CONF.write_text("\n".join(kept) + "\n")
            print(f'Exception in thread "main" java.lang.ArrayIndexOutOfBoundsException: at line {line!r}', file=sys.stderr)
            return 1
        name, value = found.groups()
        if value.startswith("[") and value.endswith("]"):
            value = encrypt(value[1:-1], cert_pem)
        kept.append(f'{name} = "{value}"')
    CONF.write_text("\n".join(kept) + "\n")
    SECRET_CONF.parent.mkdir(parents=True, exist_ok=True)
    SECRET_CONF.write_text(
        "#written by the STAND-IN cipher tool\n"
        "secVault.enabled=true\n"
        "carbon.secretProvider=org.wso2.securevault.secret.handler.SecretManagerSecretCallbackHandler\n"
        "secretRepositories=file\n"
        "secretRepositories.file.provider=org.wso2.securevault.secret.repository.FileBaseSecretRepositoryProvider\n"
        "secretRepositories.file.location=repository/conf/security/cipher-text.properties\n"
        f"keystore.identity.location={store}\n"
        f"keystore.identity.type={store_type}\n"
        f"keystore.identity.alias={alias}\n"
        "keystore.identity.store.password=identity.store.password\n"
        "keystore.identity.store.secretProvider=org.wso2.carbon.securevault.DefaultSecretCallbackHandler\n"
        "keystore.identity.key.password=identity.key.password\n"
        "keystore.identity.key.secretProvider=org.wso2.carbon.securevault.DefaultSecretCallbackHandler\n"
    )
    print("Secret Configurations are written to the property file successfully")
    return 0


if __name__ == "__main__":
    sys.exit(main())
