//! `install-channel.ps1`: the PowerShell script a colleague runs once, as
//! administrator, to add the team's channel to WSL.
//!
//! WSL reads one extra manifest URL from the machine's registry value
//! `DistributionListUrlAppend` under
//! `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Lxss` (`file://` URLs
//! since WSL 2.4.4); `wsl --list --online` and `wsl --install` then offer
//! its distributions beside Microsoft's. The script sets that value to the
//! channel's `DistributionInfo.json` URL, printing the old and the new
//! value. It leaves another channel's URL in place unless given `-Force`,
//! and then keeps that URL in `WslTarballPreviousDistributionListUrlAppend`
//! so that `-Remove` puts it back: `-Remove` undoes exactly what the script
//! did, and nothing when the value is not this channel's.
//!
//! The URL is the only value from outside: a [`CheckedUrl`] (checked
//! ASCII, no quotes but `'`, no control characters), embedded as a
//! PowerShell single-quoted literal with `'` doubled, the literal's only
//! escape.

use super::channel::CheckedUrl;

/// The manifest's file name in the release directory.
pub(crate) const MANIFEST_FILE: &str = "DistributionInfo.json";

/// `text` as a PowerShell single-quoted string literal. `text` must hold no
/// typographic quote (U+2018 to U+201B), which PowerShell also ends such
/// a literal with; a [`CheckedUrl`] is ASCII.
fn single_quoted(text: &str) -> String {
    debug_assert!(!text.contains(['\u{2018}', '\u{2019}', '\u{201a}', '\u{201b}']));
    format!("'{}'", text.replace('\'', "''"))
}

/// The script for the channel whose manifest is at `manifest_url`.
pub(crate) fn install_channel_script(manifest_url: &CheckedUrl) -> String {
    let url = single_quoted(manifest_url.as_str());
    SCRIPT.replace("@MANIFEST_URL@", &url)
}

const SCRIPT: &str = r##"# install-channel.ps1, written by wsl-tarball publish.
#
# Adds this team's WSL distribution channel to this machine: WSL then lists
# the team's images in `wsl --list --online` and installs them with
# `wsl --install NAME`. Run it once from a PowerShell started with
# "Run as administrator":
#
#   powershell -ExecutionPolicy Bypass -File .\install-channel.ps1
#
# It sets the registry value DistributionListUrlAppend under
# HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Lxss to the channel's
# manifest URL (below) and prints the old and the new value. WSL reads one
# URL there: a different one is left alone unless -Force is given, and is
# then kept so that -Remove restores it. -Remove undoes exactly this
# script's change.
#
# A file:// manifest URL needs WSL 2.4.4 or later (`wsl --version`).
[CmdletBinding()]
param(
    [switch]$Remove,
    [switch]$Force
)
Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'

$ManifestUrl = @MANIFEST_URL@
$Key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Lxss'
$Name = 'DistributionListUrlAppend'
$Saved = 'WslTarballPreviousDistributionListUrlAppend'

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Host 'install-channel.ps1 changes the machine registry (HKLM): run it from a PowerShell started with "Run as administrator".'
    exit 1
}

function Get-Value([string]$ValueName) {
    $item = Get-ItemProperty -LiteralPath $Key -ErrorAction SilentlyContinue
    if ($null -ne $item -and ($item.PSObject.Properties.Name -contains $ValueName)) {
        return [string]$item.$ValueName
    }
    return $null
}

function Show([string]$Value) {
    if ($null -eq $Value) { return '(not set)' }
    return $Value
}

$current = Get-Value $Name
$saved = Get-Value $Saved

if ($Remove) {
    if ($current -ne $ManifestUrl) {
        Write-Host "$Key\$Name is $(Show $current), not this channel's $ManifestUrl`: nothing to undo."
        exit 0
    }
    if ($null -ne $saved) {
        Set-ItemProperty -LiteralPath $Key -Name $Name -Value $saved
        Remove-ItemProperty -LiteralPath $Key -Name $Saved
    } else {
        Remove-ItemProperty -LiteralPath $Key -Name $Name
    }
    Write-Host "Changed $Key\$Name"
    Write-Host "  old value: $current"
    Write-Host "  new value: $(Show $saved)"
    exit 0
}

if ($current -eq $ManifestUrl) {
    Write-Host "$Key\$Name is already $ManifestUrl`: nothing to change."
    exit 0
}
if ($null -ne $current) {
    if (-not $Force) {
        Write-Host "$Key\$Name already holds another channel: $current"
        Write-Host "WSL reads one URL there. Run again with -Force to replace it with $ManifestUrl (-Remove then restores it)."
        exit 1
    }
    New-ItemProperty -LiteralPath $Key -Name $Saved -PropertyType String -Value $current -Force | Out-Null
}
if (-not (Test-Path -LiteralPath $Key)) {
    New-Item -Path $Key -Force | Out-Null
}
New-ItemProperty -LiteralPath $Key -Name $Name -PropertyType String -Value $ManifestUrl -Force | Out-Null
Write-Host "Changed $Key\$Name"
Write-Host "  old value: $(Show $current)"
Write-Host "  new value: $ManifestUrl"
Write-Host 'Now `wsl --list --online` lists the channel and `wsl --install NAME` installs from it; -Remove undoes this.'
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_one_single_quoted_literal_with_quotes_doubled() {
        let url = CheckedUrl::parse("https://example.com/it's/DistributionInfo.json").unwrap();
        let script = install_channel_script(&url);
        assert!(
            script.contains("\n$ManifestUrl = 'https://example.com/it''s/DistributionInfo.json'\n"),
            "{script}"
        );
        assert_eq!(script.matches("example.com").count(), 1);
        assert!(!script.contains("@MANIFEST_URL@"));
        assert!(script.is_ascii());
        assert!(script.contains("file:// manifest URL needs WSL 2.4.4"));
        assert_eq!(single_quoted("'; rm -r '"), "'''; rm -r '''");
    }
}
