<#
.SYNOPSIS
Registers a Windows scheduled task that runs one update-mirror job every day.

.DESCRIPTION
Reads update-mirror-task.xml (beside this script), fills in the job name, the time of day, the
random delay, the paths of node.exe and of update-mirror, and the account, and registers the task
as \update-mirror\<JobName> with Register-ScheduledTask. Run it from an elevated PowerShell, once per
job. The task runs:

    node.exe "<InstallPrefix>\node_modules\update-mirror\bin\update-mirror.js" run <JobName> --scheduled

update-mirror must be installed for the whole machine, not in a user's %APPDATA%\npm:

    npm install -g update-mirror --prefix "$env:ProgramFiles\update-mirror"

The config is %ProgramData%\update-mirror\config.json (write it with update-mirror init) unless
-ConfigPath names another. Give the account Modify on the mirror folder and the log folder and Read
on the config and the keys. docs/operations.md describes the whole setup.

.PARAMETER JobName
The job's name in the config's "jobs" (1-64 of a-z, 0-9, '.', '_', '-'). It is also the task's name.

.PARAMETER User
The account the task runs as. Built-in accounts need no password: 'NT AUTHORITY\NETWORK SERVICE'
(the default; the computer account on the network), 'NT AUTHORITY\LOCAL SERVICE', 'NT AUTHORITY\SYSTEM'
(avoid: it may do anything on the machine). A group managed service account ends with '$'
('CORP\svc-mirror$') and needs no password either. Any other account needs its password (-Password,
or a prompt) and the "Log on as a batch job" right.

.PARAMETER Password
The password of -User when it is an ordinary account. Without it you are prompted.

.PARAMETER At
The time of day (local time, HH:MM, 24 h) the task starts. Default 02:30.

.PARAMETER RandomDelay
Up to this long the trigger waits at random after -At, as an ISO 8601 duration (PT15M, PT1H). Default
PT15M; PT0S turns it off. Use either this or the job's "randomDelay" in the config, not both: they add up.

.PARAMETER ConfigPath
The config file, when it is not %ProgramData%\update-mirror\config.json. Passed to the job with its
config option; the task runs in its folder.

.PARAMETER NodePath
node.exe (Node.js 20.19 or newer). Default: %ProgramFiles%\nodejs\node.exe, where the MSI puts it.

.PARAMETER InstallPrefix
npm's prefix update-mirror was installed with. Default: %ProgramFiles%\update-mirror.

.PARAMETER TaskPath
The Task Scheduler folder of the task. Default \update-mirror\.

.PARAMETER XmlPath
The task template. Default: update-mirror-task.xml beside this script.

.PARAMETER Force
Replace a task of the same name.

.EXAMPLE
.\install-task.ps1 -JobName nightly-sync

Every day at 02:30 (plus up to 15 minutes), as NETWORK SERVICE.

.EXAMPLE
.\install-task.ps1 -JobName nightly-sync -User 'CORP\svc-mirror$' -At 03:15 -Force

As a group managed service account, at 03:15, replacing the task registered before.

.EXAMPLE
.\install-task.ps1 -JobName import-usb -User 'MIRROR01\update-mirror' -ConfigPath 'D:\update-mirror\config.json' -WhatIf

What would be registered, for a local account and a config elsewhere, without registering anything.

.NOTES
Start the task now with Start-ScheduledTask -TaskPath '\update-mirror\' -TaskName <JobName>, then look
at "Last Run Result" (update-mirror's exit code: README.md, Exit codes) and at
update-mirror history --job <JobName>. Remove it with Unregister-ScheduledTask.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('(?-i)^[a-z0-9][a-z0-9._-]{0,63}$')]
    [string] $JobName,

    [string] $User = 'NT AUTHORITY\NETWORK SERVICE',

    [System.Security.SecureString] $Password,

    [ValidatePattern('^([01][0-9]|2[0-3]):[0-5][0-9]$')]
    [string] $At = '02:30',

    [ValidatePattern('^P([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?$')]
    [string] $RandomDelay = 'PT15M',

    [string] $ConfigPath,

    [string] $NodePath = (Join-Path $env:ProgramFiles 'nodejs\node.exe'),

    [string] $InstallPrefix = (Join-Path $env:ProgramFiles 'update-mirror'),

    [string] $TaskPath = '\update-mirror\',

    [string] $XmlPath = (Join-Path $PSScriptRoot 'update-mirror-task.xml'),

    [switch] $Force
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# What the task will run: node.exe on the package's own script (see update-mirror-task.xml for why).
$cli = Join-Path $InstallPrefix 'node_modules\update-mirror\bin\update-mirror.js'
if (-not (Test-Path -LiteralPath $NodePath -PathType Leaf)) {
    throw "node.exe not found at ${NodePath}: install Node.js 20.19 or newer, or give -NodePath"
}
if (-not (Test-Path -LiteralPath $cli -PathType Leaf)) {
    throw "update-mirror's script not found at ${cli}: npm install -g update-mirror --prefix `"$InstallPrefix`", or give -InstallPrefix"
}
if (-not (Test-Path -LiteralPath $XmlPath -PathType Leaf)) {
    throw "task template not found: $XmlPath (give -XmlPath)"
}
if ($ConfigPath) {
    $ConfigPath = (Resolve-Path -LiteralPath $ConfigPath).Path
    $workDir = Split-Path -Parent $ConfigPath
} else {
    $workDir = Join-Path $env:ProgramData 'update-mirror'
    if (-not (Test-Path -LiteralPath (Join-Path $workDir 'config.json') -PathType Leaf)) {
        Write-Warning "$workDir\config.json does not exist yet: write it with update-mirror init before the task runs"
    }
}
if (-not (Test-Path -LiteralPath $workDir -PathType Container)) {
    throw "the folder $workDir does not exist; the task runs in it (write the config with update-mirror init first)"
}

$arguments = '"{0}" run {1} --scheduled' -f $cli, $JobName
if ($ConfigPath) {
    $arguments += ' --config "{0}"' -f $ConfigPath
}

# Fill in the template.
[xml] $doc = Get-Content -LiteralPath $XmlPath -Raw -Encoding UTF8
$ns = New-Object System.Xml.XmlNamespaceManager($doc.NameTable)
$ns.AddNamespace('t', 'http://schemas.microsoft.com/windows/2004/02/mit/task')

function Get-TaskNode([string] $XPath) {
    $node = $doc.SelectSingleNode($XPath, $ns)
    if ($null -eq $node) {
        throw "$XmlPath has no $XPath"
    }
    return $node
}

(Get-TaskNode '/t:Task/t:RegistrationInfo/t:Description').InnerText = "update-mirror: run the job $JobName of the update-mirror config"
(Get-TaskNode '/t:Task/t:RegistrationInfo/t:URI').InnerText = "$TaskPath$JobName"
(Get-TaskNode '/t:Task/t:Triggers/t:CalendarTrigger/t:StartBoundary').InnerText = '{0}T{1}:00' -f (Get-Date -Format 'yyyy-MM-dd'), $At
$delay = Get-TaskNode '/t:Task/t:Triggers/t:CalendarTrigger/t:RandomDelay'
if ($RandomDelay -eq 'PT0S' -or $RandomDelay -eq 'P') {
    [void] $delay.ParentNode.RemoveChild($delay)
} else {
    $delay.InnerText = $RandomDelay
}
(Get-TaskNode '/t:Task/t:Actions/t:Exec/t:Command').InnerText = '"{0}"' -f $NodePath
(Get-TaskNode '/t:Task/t:Actions/t:Exec/t:Arguments').InnerText = $arguments
(Get-TaskNode '/t:Task/t:Actions/t:Exec/t:WorkingDirectory').InnerText = $workDir

# The account: built-in service accounts by SID; anything else is registered with its password, or, for a
# group managed service account, set afterwards (Task Scheduler fetches a gMSA's password itself).
$builtIn = @{
    'NT AUTHORITY\SYSTEM' = 'S-1-5-18'; 'SYSTEM' = 'S-1-5-18'
    'NT AUTHORITY\LOCAL SERVICE' = 'S-1-5-19'; 'LOCAL SERVICE' = 'S-1-5-19'
    'NT AUTHORITY\NETWORK SERVICE' = 'S-1-5-20'; 'NETWORK SERVICE' = 'S-1-5-20'
}
$isGmsa = $User.EndsWith('$')
$userId = Get-TaskNode '/t:Task/t:Principals/t:Principal/t:UserId'
$registerAs = @{}
if ($builtIn.ContainsKey($User)) {
    $userId.InnerText = $builtIn[$User]
} elseif ($isGmsa) {
    # Registered as NETWORK SERVICE first; Set-ScheduledTask below moves it to the gMSA.
    $userId.InnerText = 'S-1-5-20'
} else {
    $userId.InnerText = $User
    if ($null -eq $Password) {
        $Password = (Get-Credential -UserName $User -Message "Password of $User, for the task $TaskPath$JobName").Password
    }
    $plain = [System.Net.NetworkCredential]::new('', $Password).Password
    $registerAs = @{ User = $User; Password = $plain }
}

# Comments and the XML declaration are for people; Task Scheduler gets the task element alone.
foreach ($comment in @($doc.SelectNodes('//comment()'))) {
    [void] $comment.ParentNode.RemoveChild($comment)
}
if ($doc.FirstChild -is [System.Xml.XmlDeclaration]) {
    [void] $doc.RemoveChild($doc.FirstChild)
}

$existing = Get-ScheduledTask -TaskPath $TaskPath -TaskName $JobName -ErrorAction SilentlyContinue
if ($existing -and -not $Force) {
    throw "a task $TaskPath$JobName exists already; give -Force to replace it"
}

if ($PSCmdlet.ShouldProcess("$TaskPath$JobName", "register a daily task at $At as $User running: `"$NodePath`" $arguments")) {
    $task = Register-ScheduledTask -TaskName $JobName -TaskPath $TaskPath -Xml $doc.OuterXml -Force:$Force @registerAs
    if ($isGmsa) {
        $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Password -RunLevel Limited
        $task = Set-ScheduledTask -TaskName $JobName -TaskPath $TaskPath -Principal $principal
    }
    $next = (Get-ScheduledTaskInfo -TaskName $JobName -TaskPath $TaskPath).NextRunTime
    Write-Output "registered $TaskPath$JobName as ${User}: next run $next (plus up to $RandomDelay)"
    Write-Output "run it now: Start-ScheduledTask -TaskPath '$TaskPath' -TaskName '$JobName'; then look at its Last Run Result and at: update-mirror history --job $JobName"
}
