; Inno Setup 6 script of the LAN Farm installer (per-user, no admin rights needed).
; Built by `python scripts/build_bundle.py --installer` on Windows, which passes the version from
; farm/version.py and the bundle folder:
;   ISCC /DAppVersion=0.1.0 /DBundleDir=build\dist\LANFarm /Obuild\dist packaging\windows\lanfarm.iss
#ifndef AppVersion
  #error AppVersion is not defined: build with scripts/build_bundle.py --installer (it reads farm/version.py)
#endif
#ifndef BundleDir
  #define BundleDir "..\..\build\dist\LANFarm"
#endif

[Setup]
AppId={{6F1C2A4E-3B7D-4E59-9C1A-4C7A2D0B5E11}
AppName=LAN Farm
AppVersion={#AppVersion}
AppVerName=LAN Farm {#AppVersion}
AppPublisher=LAN Farm
DefaultDirName={autopf}\LAN Farm
DefaultGroupName=LAN Farm
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=LANFarm-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\lanfarm.ico
UninstallDisplayIcon={app}\LANFarm.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startup"; Description: "Start LAN Farm when I sign in"; GroupDescription: "Start-up:"; Flags: unchecked
Name: "addtopath"; Description: "Add lanfarm-cli to PATH (run a headless node from a terminal)"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\LAN Farm"; Filename: "{app}\LANFarm.exe"
Name: "{group}\Uninstall LAN Farm"; Filename: "{uninstallexe}"
Name: "{autodesktop}\LAN Farm"; Filename: "{app}\LANFarm.exe"; Tasks: desktopicon
Name: "{userstartup}\LAN Farm"; Filename: "{app}\LANFarm.exe"; Tasks: startup

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\LANFarm.exe"; Description: "{cm:LaunchProgram,LAN Farm}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
Filename: "{cmd}"; Parameters: "/C taskkill /IM LANFarm.exe /F"; Flags: runhidden; RunOnceId: "StopApp"

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Path) then
    Path := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;
