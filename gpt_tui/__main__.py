from gpt_tui.fastcli import main

raise SystemExit(main())
