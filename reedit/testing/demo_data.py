"""Build the shipped demo dataset ``re_edit_demo.json`` (10 records in RE-Edit format).

Every image is a 256x256 RGB scene drawn with ``PIL.ImageDraw`` (no fonts, no randomness), so the
output is deterministic. Usage::

    python -m reedit.testing.demo_data [OUTPUT.json]

Without an argument the shipped file (reedit/data/demo/re_edit_demo.json) is (re)written. Only
stdlib and PIL are used.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

SIZE = 256
DEFAULT_OUTPUT = Path(__file__).parent.parent / "data" / "demo" / "re_edit_demo.json"
CATEGORIES = ("physical", "environmental", "cultural", "causal", "referential")
DATA_URI_RECORD = 3  # this record's image carries a "data:image/png;base64," prefix

RGB = tuple[int, int, int]
Draw = ImageDraw.ImageDraw


# --------------------------------------------------------------------------- drawing helpers


def _canvas(colour: RGB) -> tuple[Image.Image, Draw]:
    img = Image.new("RGB", (SIZE, SIZE), colour)
    return img, ImageDraw.Draw(img)


def _circle(d: Draw, cx: int, cy: int, r: int, fill: RGB, outline: RGB | None = None) -> None:
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=2)


def _overlay(img: Image.Image, shapes: list[tuple[str, object, tuple[int, int, int, int]]]) -> None:
    """Alpha-blend translucent polygons/ellipses onto ``img`` in place."""
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for kind, xy, fill in shapes:
        if kind == "polygon":
            d.polygon(xy, fill=fill)
        else:
            d.ellipse(xy, fill=fill)
    img.paste(Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"))


def _table_top(d: Draw, y_back: int = 150, y_front: int = 186) -> None:
    """A wooden table seen slightly from above: top surface, front edge and two legs."""
    d.polygon([(44, y_back), (212, y_back), (234, y_front), (22, y_front)], fill=(158, 104, 58))
    d.rectangle((22, y_front, 234, y_front + 8), fill=(112, 70, 36))
    d.rectangle((34, y_front + 8, 46, 250), fill=(112, 70, 36))
    d.rectangle((210, y_front + 8, 222, 250), fill=(112, 70, 36))


def _sky_sun(d: Draw, sky: RGB, horizon: int, sun: tuple[int, int, int]) -> None:
    d.rectangle((0, 0, SIZE, horizon), fill=sky)
    cx, cy, r = sun
    for i in range(8):
        dx, dy = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)][i]
        k = 0.7 if dx and dy else 1.0
        x0, y0 = cx + int(dx * k * (r + 5)), cy + int(dy * k * (r + 5))
        x1, y1 = cx + int(dx * k * (r + 14)), cy + int(dy * k * (r + 14))
        d.line((x0, y0, x1, y1), fill=(255, 214, 60), width=3)
    _circle(d, cx, cy, r, (255, 226, 70))


# --------------------------------------------------------------------------- scenes


def _ball_lamp() -> Image.Image:
    img, d = _canvas((232, 222, 200))
    d.rectangle((0, 196, SIZE, SIZE), fill=(178, 148, 110))
    _table_top(d)
    # light cone from the lamp on the right end of the table
    _overlay(img, [("polygon", [(152, 78), (194, 78), (214, 168), (64, 168)], (255, 246, 180, 70))])
    d = ImageDraw.Draw(img)
    # the ball's shadow falls to the left, away from the lamp
    d.ellipse((56, 154, 122, 168), fill=(104, 64, 32))
    _circle(d, 118, 140, 20, (168, 24, 28))
    _circle(d, 122, 136, 15, (214, 46, 46))
    _circle(d, 127, 131, 5, (255, 190, 180))
    # desk lamp standing at the right end of the table
    d.ellipse((186, 152, 222, 164), fill=(58, 58, 66))
    d.line((204, 157, 204, 50), fill=(58, 58, 66), width=5)
    d.line((204, 50, 174, 50), fill=(58, 58, 66), width=5)
    d.polygon([(160, 48), (186, 48), (196, 80), (150, 80)], fill=(36, 96, 64))
    d.ellipse((163, 72, 183, 86), fill=(255, 244, 170))
    return img


def _glass_of_water() -> Image.Image:
    img, d = _canvas((214, 222, 232))
    d.rectangle((0, 196, SIZE, SIZE), fill=(150, 150, 158))
    _table_top(d)
    d.ellipse((92, 158, 172, 172), fill=(116, 74, 40))  # contact shadow
    d.polygon([(98, 64), (158, 64), (151, 166), (105, 166)], fill=(226, 238, 246))
    d.polygon([(101, 100), (155, 100), (151, 163), (105, 163)], fill=(118, 178, 228))
    d.ellipse((101, 95, 155, 105), fill=(164, 206, 240))  # level water surface
    d.rectangle((105, 156, 151, 166), fill=(186, 212, 230))  # thick glass base
    d.polygon([(98, 64), (158, 64), (151, 166), (105, 166)], outline=(110, 132, 156), width=3)
    d.ellipse((98, 58, 158, 70), outline=(110, 132, 156), width=3)
    d.line((108, 74, 112, 150), fill=(250, 252, 255), width=3)  # reflection
    return img


def _house_sunny() -> Image.Image:
    img, d = _canvas((90, 170, 70))
    _sky_sun(d, (120, 186, 246), 168, (212, 44, 18))
    d.ellipse((30, 30, 90, 52), fill=(250, 250, 252))  # small cloud
    d.ellipse((56, 22, 104, 48), fill=(250, 250, 252))
    # shadows fall to the left, away from the sun
    d.polygon([(60, 200), (150, 200), (118, 214), (28, 214)], fill=(66, 136, 52))
    d.ellipse((150, 196, 204, 208), fill=(66, 136, 52))
    # house
    d.rectangle((60, 120, 150, 200), fill=(236, 222, 192))
    d.polygon([(48, 124), (105, 78), (162, 124)], fill=(188, 58, 48))
    d.rectangle((95, 160, 115, 200), fill=(118, 70, 40))
    for x in (70, 122):
        d.rectangle((x, 134, x + 18, 152), fill=(170, 214, 240), outline=(90, 90, 90), width=2)
        d.line((x + 9, 134, x + 9, 152), fill=(90, 90, 90), width=2)
        d.line((x, 143, x + 18, 143), fill=(90, 90, 90), width=2)
    # tree in full leaf
    d.rectangle((192, 140, 202, 202), fill=(108, 72, 40))
    _circle(d, 197, 118, 28, (56, 146, 48))
    _circle(d, 178, 136, 18, (56, 146, 48))
    _circle(d, 216, 136, 18, (56, 146, 48))
    _circle(d, 204, 108, 10, (84, 172, 64))
    return img


def _street_noon() -> Image.Image:
    img, d = _canvas((136, 200, 250))
    _circle(d, 128, 20, 13, (255, 236, 110))
    buildings = [
        (0, 70, 52, (196, 168, 140)),
        (52, 96, 100, (168, 176, 190)),
        (100, 52, 156, (210, 190, 150)),
        (156, 84, 206, (180, 150, 150)),
        (206, 62, 256, (160, 180, 168)),
    ]
    for x0, top, x1, colour in buildings:
        d.rectangle((x0, top, x1, 172), fill=colour, outline=(120, 120, 120))
        for wy in range(top + 10, 160, 22):
            for wx in range(x0 + 8, x1 - 12, 16):
                d.rectangle((wx, wy, wx + 8, wy + 12), fill=(96, 116, 136))
    d.rectangle((0, 172, SIZE, 188), fill=(192, 190, 184))  # sidewalk
    d.rectangle((0, 188, SIZE, SIZE), fill=(78, 78, 84))  # road
    for x in range(6, SIZE, 40):
        d.rectangle((x, 220, x + 22, 224), fill=(240, 240, 240))
    # street lamp, switched off, with a short noon shadow right at its foot
    d.ellipse((190, 182, 212, 190), fill=(150, 148, 142))
    d.line((200, 186, 200, 96), fill=(60, 64, 70), width=5)
    d.line((200, 98, 178, 98), fill=(60, 64, 70), width=4)
    d.polygon([(168, 98), (188, 98), (184, 106), (172, 106)], fill=(120, 124, 130))
    return img


def _table_chopsticks() -> Image.Image:
    img, d = _canvas((206, 196, 178))
    d.rectangle((16, 26, 240, 230), fill=(164, 112, 66))
    for y in range(38, 230, 18):
        d.line((16, y, 240, y), fill=(150, 100, 58), width=2)
    for top in (36, 138):  # two place settings facing each other
        d.rectangle((70, top, 186, top + 82), fill=(216, 200, 158))
        _circle(d, 110, top + 36, 22, (246, 246, 240), (170, 170, 170))
        _circle(d, 110, top + 36, 15, (232, 232, 226))
        _circle(d, 156, top + 30, 11, (246, 246, 240), (170, 170, 170))
        y = top + 70 if top > 100 else top + 8
        d.line((78, y, 176, y - 2), fill=(60, 34, 20), width=3)
        d.line((78, y + 5, 176, y + 5), fill=(60, 34, 20), width=3)
    return img


def _front_door() -> Image.Image:
    img, d = _canvas((214, 196, 166))
    for row, y in enumerate(range(0, 214, 14)):
        d.line((0, y, SIZE, y), fill=(190, 170, 140))
        offset = 0 if row % 2 == 0 else 16
        for x in range(offset, SIZE, 32):
            d.line((x, y, x, y + 14), fill=(190, 170, 140))
    d.rectangle((0, 232, SIZE, SIZE), fill=(146, 146, 146))
    d.rectangle((80, 48, 176, 58), fill=(120, 110, 100))  # lintel
    d.rectangle((88, 58, 168, 212), fill=(70, 46, 30))  # frame
    for x0 in (94, 129):
        d.rectangle((x0, 64, x0 + 33, 212), fill=(118, 74, 42))
        d.rectangle((x0 + 6, 74, x0 + 27, 132), outline=(90, 56, 30), width=3)
        d.rectangle((x0 + 6, 144, x0 + 27, 202), outline=(90, 56, 30), width=3)
    _circle(d, 122, 140, 3, (210, 180, 80))
    _circle(d, 134, 140, 3, (210, 180, 80))
    d.rectangle((72, 212, 184, 222), fill=(176, 176, 172))  # steps
    d.rectangle((62, 222, 194, 234), fill=(160, 160, 156))
    return img


def _ice_cube_sun() -> Image.Image:
    img, d = _canvas((172, 128, 88))
    _sky_sun(d, (130, 196, 246), 120, (46, 38, 20))
    d.rectangle((0, 120, SIZE, 128), fill=(140, 100, 66))  # table edge at the back
    for x in range(0, SIZE, 32):
        d.line((x, 128, x - 20, SIZE), fill=(150, 110, 74), width=2)
    d.ellipse((60, 146, 196, 206), fill=(246, 246, 246), outline=(196, 196, 200), width=3)
    d.ellipse((80, 156, 176, 196), outline=(226, 226, 230), width=2)
    d.ellipse((138, 166, 180, 182), fill=(206, 214, 224))  # shadow, away from the sun
    d.polygon([(106, 140), (144, 140), (144, 178), (106, 178)], fill=(196, 228, 246))
    d.polygon([(106, 140), (144, 140), (156, 130), (118, 130)], fill=(228, 246, 255))
    d.polygon([(144, 140), (156, 130), (156, 168), (144, 178)], fill=(164, 206, 234))
    d.line((110, 146, 116, 170), fill=(250, 254, 255), width=2)
    return img


def _candle_lit() -> Image.Image:
    img, d = _canvas((34, 30, 40))
    for r, colour in ((118, (50, 42, 44)), (86, (70, 56, 50)), (58, (98, 78, 60))):
        _circle(d, 128, 84, r, colour)  # warm glow around the flame
    d.rectangle((0, 204, SIZE, SIZE), fill=(62, 46, 36))
    d.ellipse((84, 194, 172, 214), fill=(172, 140, 60))  # brass holder
    d.rectangle((104, 186, 152, 200), fill=(150, 120, 48))
    d.rectangle((112, 112, 144, 192), fill=(240, 236, 222))
    d.ellipse((112, 106, 144, 118), fill=(250, 248, 240))
    d.line((128, 112, 128, 100), fill=(20, 20, 20), width=2)  # wick
    d.ellipse((119, 62, 137, 104), fill=(255, 196, 56))  # flame
    d.ellipse((123, 78, 133, 102), fill=(255, 244, 200))
    d.ellipse((125, 96, 131, 104), fill=(110, 140, 250))
    return img


def _three_circles() -> Image.Image:
    img, d = _canvas((244, 244, 244))
    for cx, colour in ((56, (220, 40, 40)), (128, (40, 170, 60)), (200, (40, 80, 220))):
        _circle(d, cx, 128, 32, colour, (60, 60, 60))
    return img


def _two_boxes() -> Image.Image:
    img, d = _canvas((226, 226, 220))
    d.rectangle((0, 170, SIZE, SIZE), fill=(168, 158, 146))
    # larger grey box, further back (its base is higher on the floor)
    d.ellipse((104, 162, 238, 178), fill=(140, 132, 122))
    d.polygon([(104, 46), (214, 46), (234, 30), (124, 30)], fill=(182, 184, 192))
    d.polygon([(214, 46), (234, 30), (234, 154), (214, 170)], fill=(120, 122, 132))
    d.rectangle((104, 46, 214, 170), fill=(150, 152, 162))
    # small brown cardboard box in front, hiding the grey box's lower left part
    d.ellipse((52, 192, 164, 208), fill=(132, 122, 110))
    d.polygon([(56, 128), (140, 128), (156, 116), (72, 116)], fill=(214, 170, 112))
    d.polygon([(140, 128), (156, 116), (156, 190), (140, 202)], fill=(150, 104, 58))
    d.rectangle((56, 128, 140, 202), fill=(184, 134, 78))
    d.polygon([(90, 128), (106, 128), (122, 116), (106, 116)], fill=(236, 210, 160))  # tape
    d.rectangle((90, 128, 106, 150), fill=(236, 210, 160))
    return img


# --------------------------------------------------------------------------- records

# Each scene: a drawing function plus the texts of its record, in CATEGORIES order (2 each).
SCENES: list[dict[str, Any]] = [
    {
        "draw": _ball_lamp,
        "difficulty": "easy",
        "tags": ["lighting", "shadow", "light direction"],
        "edit_instruction_en": "Move the lamp to the left side of the table.",
        "original_description_en": (
            "A red ball sits in the middle of a wooden table. A desk lamp stands at the right end "
            "of the table and lights the ball, which casts a shadow to its left on the tabletop."
        ),
        "rationale_short_en": (
            "With the light now coming from the left, the ball's shadow must fall to its right "
            "and its highlight must move to the left side of the ball."
        ),
        "edit_instruction": "把台灯移到桌子的左边。",
        "original_description": "红球放在木桌中央，桌子右端的台灯照亮它，球的影子投在左侧桌面上。",
        "rationale_short": "光改从左边照来，球的影子必须落到右侧，高光也移到球的左侧。",
    },
    {
        "draw": _glass_of_water,
        "difficulty": "medium",
        "tags": ["liquid", "gravity", "support"],
        "edit_instruction_en": "Tip the glass over so that it lies on its side on the table.",
        "original_description_en": (
            "A clear drinking glass, two-thirds full of water, stands upright on a wooden table "
            "against a plain wall."
        ),
        "rationale_short_en": (
            "A glass on its side cannot hold the water: it must spill and spread as a puddle on "
            "the table, and any water left inside keeps a horizontal surface instead of tilting "
            "with the glass."
        ),
        "edit_instruction": "把玻璃杯碰倒，让它侧躺在桌上。",
        "original_description": "一个装了三分之二水的透明玻璃杯直立在木桌上，背景是素色墙面。",
        "rationale_short": "杯子侧倒后装不住水：水必须洒到桌面上，杯中剩下的水面仍保持水平。",
    },
    {
        "draw": _house_sunny,
        "difficulty": "easy",
        "tags": ["weather", "season", "snow"],
        "edit_instruction_en": "Make it a snowy winter day.",
        "original_description_en": (
            "A small house with a red roof stands on a green lawn on a sunny day, next to a tree "
            "in full green leaf, with the sun and a small cloud in a blue sky."
        ),
        "rationale_short_en": (
            "Snow must cover the roof and the ground, the tree must be bare with no green leaves, "
            "and the light must become overcast: a grey sky, no sun and only soft shadows."
        ),
        "edit_instruction": "把场景改成下雪的冬日。",
        "original_description": (
            "晴天里，红屋顶的小房子立在绿草地上，旁边是一棵绿叶茂盛的树，蓝天上有太阳。"
        ),
        "rationale_short": (
            "屋顶和地面要有积雪，树上没有绿叶，光线变为阴天：灰色天空、没有太阳、阴影柔和。"
        ),
    },
    {
        "draw": _street_noon,
        "difficulty": "medium",
        "tags": ["time of day", "night", "artificial light"],
        "edit_instruction_en": "Make it night.",
        "original_description_en": (
            "A city street at noon: a row of buildings, a sidewalk and a road with a dashed centre "
            "line; a switched-off street lamp stands at the kerb, the sun is high overhead and "
            "shadows are short."
        ),
        "rationale_short_en": (
            "The sky must turn dark with no sun; the street lamp and some windows should be lit, "
            "and the remaining light must come from these sources rather than from above."
        ),
        "edit_instruction": "把场景改成夜晚。",
        "original_description": (
            "正午的城市街道：一排楼房、人行道和有中心虚线的马路，路边路灯未亮，太阳高悬，影子很短。"
        ),
        "rationale_short": "天空变暗且没有太阳；路灯和部分窗户亮起，光线来自这些灯而不是头顶。",
    },
    {
        "draw": _table_chopsticks,
        "difficulty": "medium",
        "tags": ["food", "table setting", "japan"],
        "edit_instruction_en": "Set the table for a traditional Japanese breakfast.",
        "original_description_en": (
            "Top-down view of a wooden dining table with two place settings facing each other, "
            "each with an empty white bowl, a small empty dish and a pair of chopsticks."
        ),
        "rationale_short_en": (
            "A Japanese breakfast means rice, miso soup, grilled fish and pickles in separate "
            "small dishes, with chopsticks laid horizontally; Western items such as toast, cereal "
            "or a knife and fork would be wrong."
        ),
        "edit_instruction": "把餐桌布置成传统日式早餐。",
        "original_description": (
            "俯视的木餐桌上有两套相对的餐具，各有一个空白碗、一个小碟和一双筷子。"
        ),
        "rationale_short": (
            "日式早餐应有米饭、味噌汤、烤鱼和腌菜，筷子横放；吐司、麦片或刀叉都是错误的。"
        ),
    },
    {
        "draw": _front_door,
        "difficulty": "hard",
        "tags": ["festival", "decoration", "china"],
        "edit_instruction_en": "Decorate the front door for Chinese New Year.",
        "original_description_en": (
            "A plain wooden double front door in a beige brick wall, with two stone steps in "
            "front of it and bare wall on both sides of the door."
        ),
        "rationale_short_en": (
            "Expected: red couplets on both sides of the door, a fu (福) sign, often hung upside "
            "down, and red lanterns; Christmas wreaths or Halloween decorations would be "
            "culturally wrong."
        ),
        "edit_instruction": "为春节装饰这扇大门。",
        "original_description": "米色砖墙上一扇朴素的木质双开门，门前有两级石阶，门两侧墙面空着。",
        "rationale_short": (
            "门两侧应贴红色春联，贴（常倒贴的）福字并挂红灯笼；圣诞花环或万圣节装饰是错误的。"
        ),
    },
    {
        "draw": _ice_cube_sun,
        "difficulty": "easy",
        "tags": ["melting", "time", "heat"],
        "edit_instruction_en": "Show the scene one hour later.",
        "original_description_en": (
            "An ice cube sits on a white plate on an outdoor wooden table in bright sunshine, "
            "with the sun in the upper left of a clear sky."
        ),
        "rationale_short_en": (
            "An ice cube left in direct sun for an hour has melted: the plate should hold a "
            "puddle of water and no solid cube, while the rest of the scene stays the same."
        ),
        "edit_instruction": "展示一小时后的场景。",
        "original_description": "晴朗阳光下，户外木桌上的白盘子里放着一块冰块，太阳在左上方。",
        "rationale_short": "在烈日下放一小时，冰块已经融化：盘里应是一滩水而没有冰块，其余不变。",
    },
    {
        "draw": _candle_lit,
        "difficulty": "medium",
        "tags": ["fire", "smoke", "action outcome"],
        "edit_instruction_en": "Blow out the candle.",
        "original_description_en": (
            "A lit white candle in a brass holder stands on a table in a dark room; its flame "
            "casts a warm glow around it."
        ),
        "rationale_short_en": (
            "The flame must disappear and a thin wisp of smoke rise from the wick; the warm glow "
            "goes away so the scene gets darker, and the candle keeps its length."
        ),
        "edit_instruction": "吹灭蜡烛。",
        "original_description": (
            "昏暗房间的桌上，黄铜烛台里一支点燃的白蜡烛，火焰在周围投下温暖的光晕。"
        ),
        "rationale_short": "火焰消失，烛芯升起一缕细烟；暖光随之消失，画面变暗，蜡烛长度不变。",
    },
    {
        "draw": _three_circles,
        "difficulty": "easy",
        "tags": ["spatial relation", "colour", "between"],
        "edit_instruction_en": "Make the circle between the red and the blue one yellow.",
        "original_description_en": (
            "Three circles of the same size in a row on a light background: red on the left, "
            "green in the middle, blue on the right."
        ),
        "rationale_short_en": (
            "The circle between red and blue is the green middle one: only it turns yellow; the "
            "red and blue circles keep their colours, sizes and positions."
        ),
        "edit_instruction": "把红色圆和蓝色圆之间的那个圆改成黄色。",
        "original_description": "浅色背景上从左到右排着红、绿、蓝三个同样大小的圆。",
        "rationale_short": "红蓝之间的是中间的绿圆，只有它变黄；红圆和蓝圆的颜色、大小和位置不变。",
    },
    {
        "draw": _two_boxes,
        "difficulty": "hard",
        "tags": ["occlusion", "depth", "removal"],
        "edit_instruction_en": "Remove the box that is behind the other one.",
        "original_description_en": (
            "Two boxes on a floor against a wall: a small brown cardboard box in front partly "
            "hides a larger grey box standing behind it."
        ),
        "rationale_short_en": (
            "The box behind is the larger grey one, partly hidden by the small brown box: only it "
            "is removed, the wall and floor behind it are filled in, and the front box stays whole."
        ),
        "edit_instruction": "移除位于另一个箱子后面的那个箱子。",
        "original_description": (
            "地板上有两个箱子：前面较小的棕色纸箱挡住了后面较大的灰色箱子的一部分。"
        ),
        "rationale_short": (
            "后面的是被棕色小箱遮挡的灰色大箱；只移除它并补全墙面和地板，前面的箱子保持完整。"
        ),
    },
]


def _png_b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def build_records() -> list[dict[str, object]]:
    """Return the demo records (2 per category, in ``CATEGORIES`` order)."""
    records: list[dict[str, object]] = []
    for index, scene in enumerate(SCENES):
        category = CATEGORIES[index // 2]
        image = scene["draw"]()
        if image.mode != "RGB" or image.size != (SIZE, SIZE):
            raise RuntimeError(f"scene {index} drew a {image.mode} {image.size} image")
        b64 = _png_b64(image)
        if index == DATA_URI_RECORD:
            b64 = "data:image/png;base64," + b64
        difficulty = scene["difficulty"]
        records.append(
            {
                "subset": category,
                "original_image_path": f"demo/{index:05d}_{category}_{difficulty}.png",
                "src_img_b64": b64,
                "edit_instruction_en": scene["edit_instruction_en"],
                "original_description_en": scene["original_description_en"],
                "rationale_short_en": scene["rationale_short_en"],
                "edit_instruction": scene["edit_instruction"],
                "original_description": scene["original_description"],
                "rationale_short": scene["rationale_short"],
                "difficulty": difficulty,
                "tags": list(scene["tags"]),
                "seed": 1000 + index,
            }
        )
    return records


def render(records: list[dict[str, object]]) -> str:
    """Serialise records exactly as the shipped file is written."""
    return json.dumps(records, indent=1, ensure_ascii=False) + "\n"


def build(path: str | Path = DEFAULT_OUTPUT) -> Path:
    """Write the demo dataset to ``path`` (UTF-8, ``\\n`` line endings) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(build_records()), encoding="utf-8", newline="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = build(args[0] if args else DEFAULT_OUTPUT)
    sys.stdout.write(f"wrote {out} ({out.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
